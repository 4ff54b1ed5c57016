"""Which OpenSearch nodes may take a bulk request now (pure bookkeeping; the caller owns the clock).

Requests go round-robin over the healthy nodes. A node that does not answer (connection refused or
reset, timeout: dead, paused, restarting) is taken out at once and probed again after a capped,
jittered backoff that grows while it keeps failing; the first successful probe (or request) brings it
back. When every node is out, the one due first is still offered: the sender backs off between
attempts, and the events are never dropped for want of a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from logship.backoff import Backoff


@dataclass
class Host:
    url: str
    healthy: bool = True
    retry_at: float = 0.0  # when an unhealthy node is next probed
    failures: int = 0  # consecutive, since it was last healthy
    backoff: Backoff = field(default_factory=lambda: Backoff(1.0, 30.0))


class HostPool:
    def __init__(self, urls: list[str], *, backoff: tuple[float, float] = (1.0, 30.0)) -> None:
        if not urls:
            raise ValueError("at least one host")
        self._backoff = backoff
        self._hosts: dict[str, Host] = {}
        self._next = 0
        self.replace(urls)

    def replace(self, urls: list[str]) -> None:
        """Use these nodes from now on (sniffing); known nodes keep their state."""
        if not urls:
            return
        self._hosts = {u: self._hosts.get(u) or Host(u, backoff=Backoff(*self._backoff)) for u in dict.fromkeys(urls)}

    @property
    def urls(self) -> list[str]:
        return list(self._hosts)

    @property
    def healthy(self) -> list[str]:
        return [h.url for h in self._hosts.values() if h.healthy]

    def pick(self, avoid: str | None = None) -> str:
        """The next healthy node (other than `avoid` when there is another); if none, the one due first."""
        healthy = [h for h in self._hosts.values() if h.healthy]
        if avoid is not None and len(healthy) > 1:
            healthy = [h for h in healthy if h.url != avoid]
        if not healthy:
            return min(self._hosts.values(), key=lambda h: h.retry_at).url
        self._next = (self._next + 1) % len(healthy)
        return healthy[self._next].url

    def failed(self, url: str, now: float) -> float:
        """The node did not answer: take it out; returns the delay until its next probe."""
        host = self._hosts.get(url)
        if host is None:
            return 0.0
        host.healthy = False
        host.failures += 1
        delay = host.backoff.next()
        host.retry_at = now + delay
        return delay

    def succeeded(self, url: str) -> bool:
        """The node answered; True if this brings it back."""
        host = self._hosts.get(url)
        if host is None:
            return False
        back = not host.healthy
        host.healthy = True
        host.failures = 0
        host.retry_at = 0.0
        host.backoff.reset()
        return back

    def due(self, now: float) -> list[str]:
        """Unhealthy nodes whose probe is due."""
        return [h.url for h in self._hosts.values() if not h.healthy and h.retry_at <= now]

    def next_due(self) -> float | None:
        """When the next probe is due (None: every node is healthy)."""
        times = [h.retry_at for h in self._hosts.values() if not h.healthy]
        return min(times) if times else None
