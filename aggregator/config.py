"""The `aggregator:` config section (docs/configuration.md is the contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from aggregator.routing import FAMILY_INDEX, PatternError, RouteSpec, check_family_index, compile_pattern
from logship.config import Backoff, ByteSize, Duration, StrictModel, read_secret
from logship.tls import TLSSettings


class ListenConfig(StrictModel):
    host: str = "0.0.0.0"
    port: int = Field(5044, ge=0, le=65535)
    tls: TLSSettings = TLSSettings()
    max_frame_bytes: ByteSize = 16 * 1024 * 1024
    max_window_size: int = Field(16384, ge=1)
    max_decompressed_bytes: ByteSize = 64 * 1024 * 1024
    idle_timeout: Duration = 300.0
    keepalive_interval: Duration = Field(2.0, gt=0)
    # Windows per connection handled at once (acked in order); a pipelining shipper keeps this many busy.
    max_windows_in_flight: int = Field(4, ge=1, le=64)
    # What clients can make us hold: payload bytes of one window, and connections at once (0 = unlimited).
    max_window_bytes: ByteSize = Field(128 * 1024 * 1024, ge=0)
    max_connections: int = Field(4096, ge=0)


def _check_pattern(value: str) -> str:
    try:
        compile_pattern(value)
    except PatternError as exc:
        raise ValueError(str(exc)) from None
    return value


class RouteConfig(StrictModel):
    """First match wins: `tag` in the event's tags (if set) and every `match` field equal to one of its globs."""

    tag: str | None = Field(None, min_length=1)
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    index: str

    @field_validator("index")
    @classmethod
    def _index_pattern(cls, value: str) -> str:
        return _check_pattern(value)

    @field_validator("match")
    @classmethod
    def _conditions(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for path, globs in value.items():
            if not path or path.startswith(".") or path.endswith(".") or ".." in path:
                raise ValueError(f"{path!r} is not a dotted field path such as input.type or log.file.path")
            if isinstance(globs, list) and not globs:
                raise ValueError(f"{path}: give at least one value")
        return value

    @model_validator(mode="after")
    def _something_to_match(self) -> RouteConfig:
        if self.tag is None and not self.match:
            raise ValueError("a route needs a tag, a match, or both (use default_index for everything else)")
        return self

    def spec(self) -> RouteSpec:
        match = tuple((path, (g,) if isinstance(g, str) else tuple(g)) for path, g in self.match.items())
        return RouteSpec(index=self.index, tag=self.tag, match=match)


class AwsSigV4Config(StrictModel):
    region: str = Field(min_length=1)
    service: Literal["es", "aoss"] = "es"


class OpenSearchConfig(StrictModel):
    # every node of the cluster (requests are spread over the ones that answer); one URL may be given
    # as a plain string
    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"], min_length=1)
    # ask the cluster for its nodes' addresses (`_nodes/http`) at start and every sniff_interval.
    # Off by default: Amazon OpenSearch Service forbids it (and a load balancer in front hides the nodes).
    sniff: bool = False
    sniff_interval: Duration = Field(300.0, gt=0)
    username: SecretStr | None = None
    password: SecretStr | None = None
    username_file: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    verify_certs: bool = True
    aws_sigv4: AwsSigV4Config | None = None
    timeout: Duration = Field(60.0, gt=0)

    @field_validator("hosts", mode="before")
    @classmethod
    def _one_host(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("hosts")
    @classmethod
    def _valid_hosts(cls, hosts: list[str]) -> list[str]:
        for h in hosts:
            if "@" in h.split("//", 1)[-1].split("/", 1)[0]:
                # credentials in a URL end up in logs and error messages; keep them in their own keys
                raise ValueError("put credentials in username/password (or *_file), not in the host URL")
            scheme, sep, rest = h.partition("://")
            if not sep or scheme.lower() not in ("http", "https") or not rest.split("/", 1)[0]:
                raise ValueError(f"{h!r} is not a node URL such as https://opensearch-0.example:9200")
        if len({h.rstrip("/") for h in hosts}) != len(hosts):
            raise ValueError("a node is listed twice")
        if len({h.partition("://")[0].lower() for h in hosts}) > 1:
            raise ValueError("mixes http:// and https:// nodes; one cluster speaks one of them")
        return [h.rstrip("/") for h in hosts]

    def credentials(self) -> tuple[str, str] | None:
        """(username, password) from the inline values or the mounted secret files; None if unset."""
        user = read_secret(
            self.username.get_secret_value() if self.username else None,
            self.username_file,
            "aggregator.opensearch.username_file",
        )
        password = read_secret(
            self.password.get_secret_value() if self.password else None,
            self.password_file,
            "aggregator.opensearch.password_file",
        )
        if user is None and password is None:
            return None
        return user or "", password or ""

    @model_validator(mode="after")
    def _auth_choice(self) -> OpenSearchConfig:
        basic = self.username or self.password or self.username_file or self.password_file
        if self.aws_sigv4 is not None and basic:
            raise ValueError("aws_sigv4 and username/password are exclusive; configure one of them")
        return self


class BulkBackoff(Backoff):
    """Retries of `_bulk` start sooner and cap lower than the shipper's reconnects."""

    initial: Duration = Field(0.5, gt=0)
    max: Duration = Field(30.0, gt=0)


class BulkConfig(StrictModel):
    max_bytes: ByteSize = Field(5 * 1024 * 1024, gt=0)
    max_docs: int = Field(5000, ge=1)
    max_delay: Duration = Field(1.0, ge=0)
    concurrency: int = Field(2, ge=1, le=64)
    gzip: bool = False
    backoff: BulkBackoff = BulkBackoff()


class TemplateConfig(StrictModel):
    install: bool = True
    name: str = Field("logstash-logs", min_length=1)
    shards: int = Field(1, ge=1)
    replicas: int = Field(1, ge=0)


class DeadLetterConfig(StrictModel):
    path: str = "/var/lib/logship/dead-letter.ndjson"
    max_bytes: ByteSize = Field(100 * 1024 * 1024, gt=0)
    keep: int = Field(5, ge=0)


class HttpConfig(StrictModel):
    host: str = "0.0.0.0"
    port: int = Field(9600, ge=0, le=65535)


CONTAINERS_INDEX = "logstash-logs-containers-%{+YYYY.MM.dd}"
APP_INDEX = "logstash-logs-app-%{+YYYY.MM.dd}"
# A stock Filebeat tags nothing: its container input says input.type container, and a filestream or
# log input reading the kubelet's files says so by its path.
KUBELET_LOG_GLOBS = ["*/var/log/containers/*", "*/var/log/pods/*"]  # also under a host mount such as /host


def _default_routes() -> list[RouteConfig]:
    return [
        RouteConfig(tag="containers", index=CONTAINERS_INDEX),
        RouteConfig(tag="app", index=APP_INDEX),
        RouteConfig(match={"input.type": "container"}, index=CONTAINERS_INDEX),
        RouteConfig(
            match={"input.type": ["filestream", "log"], "log.file.path": KUBELET_LOG_GLOBS}, index=CONTAINERS_INDEX
        ),
    ]


class AggregatorConfig(StrictModel):
    listen: ListenConfig = ListenConfig()
    routes: list[RouteConfig] = Field(default_factory=_default_routes)
    default_index: str = "logstash-logs-unrouted-%{+YYYY.MM.dd}"
    # events of pods annotated logship.io/index: <family> (the shipper's @metadata.index_family)
    family_index: str = FAMILY_INDEX
    opensearch: OpenSearchConfig = OpenSearchConfig()
    bulk: BulkConfig = BulkConfig()
    queue_max_events: int = Field(50000, ge=1)
    template: TemplateConfig = TemplateConfig()
    ism_delete_after: Duration | None = None
    dead_letter: DeadLetterConfig = DeadLetterConfig()
    http: HttpConfig = HttpConfig()
    shutdown_timeout: Duration = Field(30.0, gt=0)

    @field_validator("default_index")
    @classmethod
    def _default_pattern(cls, value: str) -> str:
        return _check_pattern(value)

    @field_validator("family_index")
    @classmethod
    def _family_pattern(cls, value: str) -> str:
        try:
            return check_family_index(value)
        except PatternError as exc:
            raise ValueError(str(exc)) from None
