"""What the generated lines say: markers, filler text, Java log lines and stack traces, pod names.

Every logical event carries a marker `run=<run> src=<source> seq=<n>` near the start of its first line,
so a test can find each event in OpenSearch and prove it arrived exactly once. All randomness comes from
the `random.Random` passed in, so a seed gives the same output every time.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass

MARKER_RE = re.compile(r"run=([0-9a-z]+) src=([0-9a-z-]+) seq=(\d+)")

_WORDS = (
    "order payment user session cache request response timeout retry upstream downstream handler "
    "query commit batch queue worker token account invoice cart item price stock shipment address "
    "latency status ok accepted processed scheduled connection pool thread client server metric"
).split()
_NAMESPACES = ("default", "shop", "payments", "monitoring", "kube-system")
_APPS = ("web", "api", "checkout", "worker", "cart", "auth", "search", "billing")
_EXTRA_CONTAINERS = ("log-agent", "envoy", "metrics")
_POD_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for generated names
_JAVA_CLASSES = (
    "com.example.shop.OrderService",
    "com.example.shop.PaymentClient",
    "com.example.shop.InventoryRepository",
    "com.example.web.RequestHandler",
    "org.springframework.web.servlet.FrameworkServlet",
    "org.hibernate.engine.jdbc.spi.SqlExceptionHelper",
)
_EXCEPTIONS = (
    "java.lang.IllegalStateException",
    "java.io.IOException",
    "java.util.concurrent.TimeoutException",
    "java.lang.NullPointerException",
    "org.springframework.dao.DataAccessResourceFailureException",
)
_LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARN")


def marker(run: str, source: str, seq: int) -> str:
    return f"run={run} src={source} seq={seq}"


class Filler:
    """Cheap pseudo-random text: slices of one pre-generated block, so generation is not the bottleneck."""

    def __init__(self, rng: random.Random, size: int = 128 * 1024) -> None:
        words: list[str] = []
        length = 0
        while length < size:
            w = rng.choice(_WORDS)
            words.append(w)
            length += len(w) + 1
        self._block = " ".join(words)
        self._doubled = self._block + self._block  # a slice from any start has up to len(block) characters
        self._rng = rng

    def text(self, length: int) -> str:
        if length <= 0:
            return ""
        start = self._rng.randrange(0, len(self._block))
        if length <= len(self._block):
            return self._doubled[start : start + length]
        tiled = self._block * (length // len(self._block) + 2)
        return tiled[start : start + length]


def container_message(run: str, source: str, seq: int, size: int, filler: Filler) -> str:
    head = marker(run, source, seq)
    return f"{head} {filler.text(size - len(head) - 1)}" if size > len(head) + 1 else head


def app_event_lines(
    run: str, seq: int, ts_text: str, size: int, stack_frames: int, rng: random.Random, filler: Filler
) -> list[str]:
    """One application log event: its first line, then stack trace lines if `stack_frames` > 0.

    Continuation lines never start with a date, so `^\\d{4}-\\d{2}-\\d{2}` marks a new record.
    """
    level = "ERROR" if stack_frames else rng.choice(_LEVELS)
    cls = rng.choice(_JAVA_CLASSES)
    head = f"{ts_text} {level:<5} [worker-{rng.randrange(8)}] {cls} - {marker(run, 'app', seq)}"
    first = f"{head} {filler.text(size - len(head) - 1)}" if size > len(head) + 1 else head
    if not stack_frames:
        return [first]
    lines = [first, f"{rng.choice(_EXCEPTIONS)}: request failed after {rng.randrange(1, 30)} retries"]
    cause_at = stack_frames // 2 if stack_frames >= 4 else -1
    for i in range(stack_frames):
        if i == cause_at:
            lines.append(f"Caused by: {rng.choice(_EXCEPTIONS)}: connection reset")
        frame_cls = rng.choice(_JAVA_CLASSES)
        method = rng.choice(("process", "handle", "invoke", "execute", "doFilter", "lambda$run$0"))
        lines.append(f"\tat {frame_cls}.{method}({frame_cls.rsplit('.', 1)[1]}.java:{rng.randrange(20, 900)})")
    if cause_at >= 0:
        lines.append(f"\t... {rng.randrange(3, 40)} more")
    return lines


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    pod: str
    uid: str
    containers: tuple[tuple[str, str], ...]  # (container name, 64-hex container id)


def pod_identity(rng: random.Random, index: int, containers: int) -> PodIdentity:
    app = _APPS[index % len(_APPS)]
    template = "".join(rng.choice("0123456789abcdef") for _ in range(10))
    suffix = "".join(rng.choice(_POD_ALPHABET) for _ in range(5))
    extra = [_EXTRA_CONTAINERS[i] if i < len(_EXTRA_CONTAINERS) else f"extra-{i}" for i in range(containers - 1)]
    names = [app, *extra]
    return PodIdentity(
        namespace=_NAMESPACES[index % len(_NAMESPACES)],
        pod=f"{app}-{template}-{suffix}",
        uid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        containers=tuple((name, f"{rng.getrandbits(256):064x}") for name in names),
    )
