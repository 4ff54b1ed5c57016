"""The `shipper:` config section, exactly as docs/configuration.md describes it."""

from __future__ import annotations

import re
import socket
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from logship.config import Backoff, ByteSize, Duration, HostPort, StrictModel
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


class MultilineConfig(StrictModel):
    start_pattern: str = r"^\d{4}-\d{2}-\d{2}[ T]"
    max_lines: int = Field(500, ge=1)
    timeout: Duration = 5.0

    @field_validator("start_pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        return _check_regex(v)


class TimestampConfig(StrictModel):
    pattern: str = r"^(?P<ts>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
    timezone: str = "UTC"

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        _check_regex(v)
        if "ts" not in re.compile(v).groupindex:
            raise ValueError("the pattern needs a named group (?P<ts>...) around the timestamp")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as UTC or Europe/Paris") from None
        return v


class InputConfig(StrictModel):
    type: Literal["containers", "app"]
    paths: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    fields: dict[str, object] = Field(default_factory=dict)
    multiline: MultilineConfig | None = None
    timestamp: TimestampConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        # paths and tags default per type, so `- type: app` alone is a complete input.
        if isinstance(data, dict) and data.get("type") in DEFAULT_PATHS:
            data = dict(data)
            if not data.get("paths"):
                data["paths"] = list(DEFAULT_PATHS[data["type"]])
            if not data.get("tags"):
                data["tags"] = [data["type"]]
        return data


class RegistryConfig(StrictModel):
    path: str = "/var/lib/logship/registry.json"
    flush_interval: Duration = 1.0
    clean_after: Duration = 86400.0


class OutputConfig(StrictModel):
    hosts: list[HostPort] = Field(default_factory=lambda: ["logship-aggregator:5044"], min_length=1)
    loadbalance: bool = False
    # Connections per endpoint with loadbalance, rotating connections without it (Filebeat's `worker`).
    # They share max_pending_windows, so raise that with them.
    workers: int = Field(1, ge=1, le=64)
    # Close and reopen each connection this often (once its windows are acked), looking the hosts up
    # again: how a scaled-up aggregator Deployment gets its share. 0 = connections live until they fail.
    ttl: Duration = Field(0.0, ge=0)
    window_size: int = Field(2048, ge=1)
    max_pending_windows: int = Field(2, ge=1)
    queue_windows: int = Field(2, ge=1)  # sealed windows waiting for the sender; readers pause beyond it
    compression_level: int = Field(3, ge=0, le=9)
    timeout: Duration = 30.0
    connect_timeout: Duration = Field(10.0, gt=0)
    backoff: Backoff = Field(default_factory=Backoff)
    tls: TLSSettings = Field(default_factory=TLSSettings)

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: float) -> float:
        if 0 < v < 1:
            raise ValueError(
                f"ttl {v:g}s would reconnect many times a second; use 0 (off) or at least 1s (60s is typical)"
            )
        return v


class HttpConfig(StrictModel):
    host: str = "0.0.0.0"
    port: int = Field(5066, ge=0, le=65535)


class ShipperConfig(StrictModel):
    name: str | None = None  # `name: ${NODE_NAME:}` with NODE_NAME unset is YAML null
    inputs: list[InputConfig] = Field(default_factory=lambda: [InputConfig(type="containers"), InputConfig(type="app")])
    sidecar: bool = False
    max_event_bytes: ByteSize = Field(1024 * 1024, ge=1024)
    read_buffer_bytes: ByteSize = Field(256 * 1024, ge=4096)
    scan_interval: Duration = 2.0
    watch: Literal["auto", "inotify", "poll"] = "auto"
    close_inactive: Duration = 300.0
    max_open_files: int = Field(4096, ge=1)
    max_deleted_bytes_held: ByteSize = Field(2 * 1024**3, ge=0)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    shutdown_timeout: Duration = 30.0

    @property
    def host_name(self) -> str:
        """`host.name` on every event: the configured name, else the machine's hostname."""
        return self.name or socket.gethostname()
