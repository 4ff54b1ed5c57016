"""The `aggregator:` config section (docs/configuration.md is the contract)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, field

from aggregator.routing import FAMILY_INDEX, PatternError, RouteSpec, check_family_index, compile_pattern
from logship.config import Backoff, ByteSize, Duration, Secret, StrictModel, check, parse, read_secret
from logship.tls import TLSSettings


def _check_pattern(value: str) -> str:
    try:
        compile_pattern(value)
    except PatternError as exc:
        raise ValueError(str(exc)) from None
    return value


def _check_family_index(value: str) -> str:
    try:
        return check_family_index(value)
    except PatternError as exc:
        raise ValueError(str(exc)) from None


def _check_conditions(value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
    for path, globs in value.items():
        if not path or path.startswith(".") or path.endswith(".") or ".." in path:
            raise ValueError(f"{path!r} is not a dotted field path such as input.type or log.file.path")
        if isinstance(globs, list) and not globs:
            raise ValueError(f"{path}: give at least one value")
    return value


def _one_host(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _check_hosts(hosts: list[str]) -> list[str]:
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


class ListenConfig(StrictModel, frozen=True):
    host: str = "0.0.0.0"
    port: Annotated[int, Meta(ge=0, le=65535)] = 5044
    tls: TLSSettings = field(default_factory=TLSSettings)
    max_frame_bytes: ByteSize = 16 * 1024 * 1024
    max_window_size: Annotated[int, Meta(ge=1)] = 16384
    max_decompressed_bytes: ByteSize = 64 * 1024 * 1024
    idle_timeout: Duration = 300.0
    keepalive_interval: Annotated[Duration, Meta(gt=0)] = 2.0
    # Windows per connection handled at once (acked in order); a pipelining shipper keeps this many busy.
    max_windows_in_flight: Annotated[int, Meta(ge=1, le=64)] = 4
    # What clients can make us hold: payload bytes of one window, and connections at once (0 = unlimited).
    max_window_bytes: Annotated[ByteSize, Meta(ge=0)] = 128 * 1024 * 1024
    max_connections: Annotated[int, Meta(ge=0)] = 4096


class RouteConfig(StrictModel, frozen=True, kw_only=True):
    """First match wins: `tag` in the event's tags (if set) and every `match` field equal to one of its globs."""

    tag: Annotated[str, Meta(min_length=1)] | None = None
    match: Annotated[dict[str, str | list[str]], check(_check_conditions)] = field(default_factory=dict)
    index: Annotated[str, check(_check_pattern)]

    def __post_init__(self) -> None:
        if self.tag is None and not self.match:
            raise ValueError("a route needs a tag, a match, or both (use default_index for everything else)")

    def spec(self) -> RouteSpec:
        match = tuple((path, (g,) if isinstance(g, str) else tuple(g)) for path, g in self.match.items())
        return RouteSpec(index=self.index, tag=self.tag, match=match)


class AwsSigV4Config(StrictModel, frozen=True):
    region: Annotated[str, Meta(min_length=1)]
    service: Literal["es", "aoss"] = "es"


class OpenSearchConfig(StrictModel, frozen=True):
    # every node of the cluster (requests are spread over the ones that answer); one URL may be given
    # as a plain string
    hosts: Annotated[list[str], parse(_one_host), Meta(min_length=1), check(_check_hosts)] = field(
        default_factory=lambda: ["http://127.0.0.1:9200"]
    )
    # ask the cluster for its nodes' addresses (`_nodes/http`) at start and every sniff_interval.
    # Off by default: Amazon OpenSearch Service forbids it (and a load balancer in front hides the nodes).
    sniff: bool = False
    sniff_interval: Annotated[Duration, Meta(gt=0)] = 300.0
    username: Secret | None = None
    password: Secret | None = None
    username_file: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    verify_certs: bool = True
    aws_sigv4: AwsSigV4Config | None = None
    timeout: Annotated[Duration, Meta(gt=0)] = 60.0

    def __post_init__(self) -> None:
        basic = self.username or self.password or self.username_file or self.password_file
        if self.aws_sigv4 is not None and basic:
            raise ValueError("aws_sigv4 and username/password are exclusive; configure one of them")

    def credentials(self) -> tuple[str, str] | None:
        """(username, password) from the inline values or the mounted secret files; None if unset."""
        user = read_secret(
            self.username.reveal() if self.username else None,
            self.username_file,
            "aggregator.opensearch.username_file",
        )
        password = read_secret(
            self.password.reveal() if self.password else None,
            self.password_file,
            "aggregator.opensearch.password_file",
        )
        if user is None and password is None:
            return None
        return user or "", password or ""


class BulkBackoff(Backoff, frozen=True):
    """Retries of `_bulk` start sooner and cap lower than the shipper's reconnects."""

    initial: Annotated[Duration, Meta(gt=0)] = 0.5
    max: Annotated[Duration, Meta(gt=0)] = 30.0


class BulkConfig(StrictModel, frozen=True):
    max_bytes: Annotated[ByteSize, Meta(gt=0)] = 5 * 1024 * 1024
    max_docs: Annotated[int, Meta(ge=1)] = 5000
    max_delay: Annotated[Duration, Meta(ge=0)] = 1.0
    concurrency: Annotated[int, Meta(ge=1, le=64)] = 2
    gzip: bool = False
    backoff: BulkBackoff = field(default_factory=BulkBackoff)


class TemplateConfig(StrictModel, frozen=True):
    install: bool = True
    name: Annotated[str, Meta(min_length=1)] = "logstash-logs"
    shards: Annotated[int, Meta(ge=1)] = 1
    replicas: Annotated[int, Meta(ge=0)] = 1


class DeadLetterConfig(StrictModel, frozen=True):
    path: str = "/var/lib/logship/dead-letter.ndjson"
    max_bytes: Annotated[ByteSize, Meta(gt=0)] = 100 * 1024 * 1024
    keep: Annotated[int, Meta(ge=0)] = 5


class HttpConfig(StrictModel, frozen=True):
    host: str = "0.0.0.0"
    port: Annotated[int, Meta(ge=0, le=65535)] = 9600


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


class AggregatorConfig(StrictModel, frozen=True):
    listen: ListenConfig = field(default_factory=ListenConfig)
    routes: list[RouteConfig] = field(default_factory=_default_routes)
    default_index: Annotated[str, check(_check_pattern)] = "logstash-logs-unrouted-%{+YYYY.MM.dd}"
    # events of pods annotated logship.io/index: <family> (the shipper's @metadata.index_family)
    family_index: Annotated[str, check(_check_family_index)] = FAMILY_INDEX
    opensearch: OpenSearchConfig = field(default_factory=OpenSearchConfig)
    bulk: BulkConfig = field(default_factory=BulkConfig)
    queue_max_events: Annotated[int, Meta(ge=1)] = 50000
    template: TemplateConfig = field(default_factory=TemplateConfig)
    ism_delete_after: Duration | None = None
    dead_letter: DeadLetterConfig = field(default_factory=DeadLetterConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    shutdown_timeout: Annotated[Duration, Meta(gt=0)] = 30.0
