"""The `shipper:` config section, exactly as docs/configuration.md describes it."""

from __future__ import annotations

import re
import socket
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Meta, field
from msgspec.structs import force_setattr

from logship.config import Backoff, ByteSize, Duration, HostPort, StrictModel, check
from logship.tls import TLSSettings
from shipper.kubernetes.config import KubernetesConfig

DEFAULT_PATHS = {
    "containers": ["/var/log/containers/*.log"],
    "app": ["/app/logs/log-*.log"],
}


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


def _check_timestamp_pattern(value: str) -> str:
    _check_regex(value)
    if "ts" not in re.compile(value).groupindex:
        raise ValueError("the pattern needs a named group (?P<ts>...) around the timestamp")
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/Paris") from None
    return value


def _check_ttl(value: float) -> float:
    if 0 < value < 1:
        raise ValueError(
            f"ttl {value:g}s would reconnect many times a second; use 0 (off) or at least 1s (60s is typical)"
        )
    return value


class MultilineConfig(StrictModel, frozen=True):
    start_pattern: Annotated[str, check(_check_regex)] = r"^\d{4}-\d{2}-\d{2}[ T]"
    max_lines: Annotated[int, Meta(ge=1)] = 500
    timeout: Duration = 5.0


class TimestampConfig(StrictModel, frozen=True):
    pattern: Annotated[str, check(_check_timestamp_pattern)] = (
        r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
    )
    timezone: Annotated[str, check(_check_zone)] = "UTC"


class InputConfig(StrictModel, frozen=True):
    type: Literal["containers", "app"]
    paths: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    multiline: MultilineConfig | None = None
    timestamp: TimestampConfig | None = None

    def __post_init__(self) -> None:
        # paths and tags default per type, so `- type: app` alone is a complete input.
        if not self.paths:
            force_setattr(self, "paths", list(DEFAULT_PATHS[self.type]))
        if not self.tags:
            force_setattr(self, "tags", [self.type])


class RegistryConfig(StrictModel, frozen=True):
    path: str = "/var/lib/logship/registry.json"
    flush_interval: Duration = 1.0
    clean_after: Duration = 86400.0


class OutputConfig(StrictModel, frozen=True):
    hosts: Annotated[list[HostPort], Meta(min_length=1)] = field(default_factory=lambda: ["logship-aggregator:5044"])
    loadbalance: bool = False
    # Connections per endpoint with loadbalance, rotating connections without it (Filebeat's `worker`).
    # They share max_pending_windows, so raise that with them.
    workers: Annotated[int, Meta(ge=1, le=64)] = 1
    # Close and reopen each connection this often (once its windows are acked), looking the hosts up
    # again: how a scaled-up aggregator Deployment gets its share. 0 = connections live until they fail.
    ttl: Annotated[Duration, Meta(ge=0), check(_check_ttl)] = 0.0
    window_size: Annotated[int, Meta(ge=1)] = 2048
    # A window is also sealed before its events pass this many bytes (0 = no limit): long lines must not
    # make windows of tens of MiB that are held until acked and refused by a reader's frame limit.
    window_max_bytes: Annotated[ByteSize, Meta(ge=0)] = 4 * 1024 * 1024
    # Windows awaiting their ack: 4 lets an aggregator fill 5,000-event bulks and keep two requests busy.
    max_pending_windows: Annotated[int, Meta(ge=1)] = 4
    queue_windows: Annotated[int, Meta(ge=1)] = 2  # sealed windows waiting for the sender; readers pause beyond it
    compression_level: Annotated[int, Meta(ge=0, le=9)] = 3
    timeout: Duration = 30.0
    connect_timeout: Annotated[Duration, Meta(gt=0)] = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    tls: TLSSettings = field(default_factory=TLSSettings)


class HttpConfig(StrictModel, frozen=True):
    host: str = "0.0.0.0"
    port: Annotated[int, Meta(ge=0, le=65535)] = 5066


class ShipperConfig(StrictModel, frozen=True):
    name: str | None = None  # `name: ${NODE_NAME:}` with NODE_NAME unset is YAML null
    inputs: list[InputConfig] = field(default_factory=lambda: [InputConfig(type="containers"), InputConfig(type="app")])
    sidecar: bool = False
    max_event_bytes: Annotated[ByteSize, Meta(ge=1024)] = 1024 * 1024
    # Bytes read from a file at a time. Each read is held as lines and as events (about 4x its size) until
    # they are deflated into the window: 128 KiB keeps that about 2 MiB below 256 KiB's peak RSS at the
    # same CPU per GiB (`benchmarks` case a); smaller reads cost CPU per read.
    read_buffer_bytes: Annotated[ByteSize, Meta(ge=4096)] = 128 * 1024
    scan_interval: Duration = 2.0
    watch: Literal["auto", "inotify", "poll"] = "auto"
    close_inactive: Duration = 300.0
    max_open_files: Annotated[int, Meta(ge=1)] = 4096
    max_deleted_bytes_held: Annotated[ByteSize, Meta(ge=0)] = 2 * 1024**3
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    shutdown_timeout: Duration = 30.0

    @property
    def host_name(self) -> str:
        """`host.name` on every event: the configured name, else the machine's hostname."""
        return self.name or socket.gethostname()
