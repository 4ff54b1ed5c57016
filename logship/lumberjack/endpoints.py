"""Where the writer connects: configured hosts expanded to the addresses their names resolve to.

A Kubernetes headless Service answers with one A record per ready pod, so one name stands for every
aggregator replica. The client resolves its hosts again whenever a connection ends (a failure, an idle
close, or its TTL), so replicas that appear after start-up receive windows within one TTL, and
replicas that are gone stop being tried.

`expand` and `Rotation` are pure; `Resolver` adds the lookup (and keeps a name's last good answer, so
a DNS hiccup never drops an endpoint that still works).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("logship.lumberjack.endpoints")


@dataclass(frozen=True)
class Endpoint:
    host: str  # as configured: the TLS server name and what logs name
    address: str  # what is connected to (the host itself when it is an address or did not resolve)
    port: int

    def __str__(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        if self.host == self.address:
            return f"{address}:{self.port}"
        return f"{self.host} ({address}):{self.port}"


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def expand(hosts: Sequence[tuple[str, int]], answers: Mapping[str, Sequence[str]]) -> list[Endpoint]:
    """Every configured host in order, as the addresses its name resolved to (first answer first).

    A host with no answer stays itself, so connecting to it reports the real error. The same address
    and port reached through two names is one endpoint: it gets one connection, not two.
    """
    out: list[Endpoint] = []
    seen: set[tuple[str, int]] = set()
    for host, port in hosts:
        for address in answers.get(host) or [host]:
            if (address, port) not in seen:
                seen.add((address, port))
                out.append(Endpoint(host, address, port))
    return out


class Rotation:
    """Which endpoint the single connection (no load balancing) uses next.

    It starts at a random endpoint, so a fleet of shippers spreads over the replicas from the first
    connection, and moves to the next one at every reconnect (failure or TTL), so that a TTL rotates a
    long-lived connection over all replicas in turn.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._previous: Endpoint | None = None

    def pick(self, endpoints: Sequence[Endpoint]) -> Endpoint:
        if not endpoints:
            raise ValueError("no endpoint to pick from")
        previous = self._previous
        if previous is not None and previous in endpoints:
            chosen = endpoints[(list(endpoints).index(previous) + 1) % len(endpoints)]
        else:
            chosen = endpoints[self._rng.randrange(len(endpoints))]
        self._previous = chosen
        return chosen


Lookup = Callable[[str, int], Awaitable[list[str]]]


async def getaddrinfo_lookup(host: str, port: int) -> list[str]:
    """Addresses of `host`, in the order the system resolver gives them, each once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Resolver:
    """The endpoints of the configured hosts now; a failed lookup keeps the name's last good answer."""

    def __init__(self, hosts: Sequence[tuple[str, int]], lookup: Lookup = getaddrinfo_lookup) -> None:
        self.hosts = list(hosts)
        self._lookup = lookup
        self._known: dict[str, list[str]] = {}

    async def endpoints(self) -> list[Endpoint]:
        for host, port in self.hosts:
            if is_address(host):
                continue
            try:
                addresses = await self._lookup(host, port)
            except (OSError, UnicodeError) as exc:
                if host in self._known:
                    log.warning("cannot resolve %s (%s); keeping its last addresses", host, exc)
                continue
            if addresses:
                if addresses != self._known.get(host):
                    log.info("%s resolves to %s", host, ", ".join(addresses))
                self._known[host] = addresses
        return expand(self.hosts, self._known)
