"""Build the JSON event of SPEC §4 (Filebeat/ECS shape) for one record.

Everything that is the same for every event of a file (tags, kubernetes, container, host, agent,
fields, the file path) is encoded once per file; per event only the timestamp, message, stream,
offset, flags and id are encoded. This is the shipper's hot path.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from logship import __version__
from shipper.docker_runs import DockerRun
from shipper.identity import FINGERPRINT_BYTES, FileIdentity
from shipper.records import Record, parse_timestamp

log = logging.getLogger(__name__)

# The ECS version Filebeat 8.x and 9.x stamp on their documents; the fields below follow it.
ECS_VERSION = "8.0.0"
# `input.type` as Filebeat names the input that reads such files, so `input.type:container` still matches.
INPUT_TYPES = {"containers": "container", "app": "filestream"}
AGENT_FILE = "agent.json"


@dataclass(frozen=True)
class Agent:
    """`agent.name`, `agent.id` (kept per node in the registry directory) and `agent.ephemeral_id` (per run)."""

    name: str
    id: str
    ephemeral_id: str


_EPHEMERAL_ID = str(uuid.uuid4())
_agent: Agent | None = None


def load_agent(registry_dir: str | Path, name: str) -> Agent:
    """The node's agent identity: the id in `<registry dir>/agent.json`, created on first start.

    Like Filebeat's `meta.json` in its data path, the id survives restarts and upgrades as long as the
    registry does. If the directory cannot be written, the id is derived from the node name (still
    stable per node) and a warning says so. Also makes it the identity of every event built later.
    """
    global _agent
    path = Path(registry_dir) / AGENT_FILE
    agent_id: str | None = None
    try:
        data = orjson.loads(path.read_bytes())
        agent_id = str(uuid.UUID(str(data["id"])))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is unreadable (%s); writing a new agent id", path, exc)
    if agent_id is None:
        agent_id = str(uuid.uuid4())
        tmp = path.with_name(AGENT_FILE + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(orjson.dumps({"id": agent_id, "created": utc_now_ms()}))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            agent_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
            log.warning("cannot write %s (%s); agent.id is derived from the node name instead", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
    _agent = Agent(name=name, id=agent_id, ephemeral_id=_EPHEMERAL_ID)
    return _agent


def current_agent(name: str) -> Agent:
    """The identity set by `load_agent`, or (before it, e.g. in tools) one derived from the name."""
    if _agent is not None:
        return _agent
    return Agent(name=name, id=str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), ephemeral_id=_EPHEMERAL_ID)


def file_fingerprint(head: bytes) -> str | None:
    """Filebeat filestream's `log.file.fingerprint`: SHA-256 of the first 1024 bytes, once the file has them."""
    if len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.sha256(head[:FINGERPRINT_BYTES]).hexdigest()


# /var/log/containers/<pod>_<namespace>_<container>-<container id>.log
_CONTAINERS_NAME = re.compile(r"^(?P<pod>[^_]+)_(?P<ns>[^_]+)_(?P<container>.+)-(?P<id>[0-9a-f]{64})\.log$")
# /var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart count>.log
_PODS_DIR = re.compile(r"^(?P<ns>[^_]+)_(?P<pod>[^_]+)_(?P<uid>[0-9a-f-]+)$")


def kubernetes_from_path(path: str) -> tuple[dict[str, str], str | None]:
    """(pod name, namespace, container name) and the container id from a kubelet log file path."""
    p = PurePosixPath(path)
    m = _CONTAINERS_NAME.match(p.name)
    if m:
        return {"pod": m["pod"], "namespace": m["ns"], "container": m["container"]}, m["id"]
    parts = p.parts
    if len(parts) >= 3:
        m = _PODS_DIR.match(parts[-3])
        if m and re.match(r"^\d+\.log", parts[-1]):
            return {"pod": m["pod"], "namespace": m["ns"], "container": parts[-2]}, None
    return {}, None


def kubernetes_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """Downward-API variables of a sidecar: POD_NAME, POD_NAMESPACE, CONTAINER_NAME."""
    out = {}
    for key, var in (("pod", "POD_NAME"), ("namespace", "POD_NAMESPACE"), ("container", "CONTAINER_NAME")):
        if env.get(var):
            out[key] = env[var]
    return out


def utc_now_ms() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class TimestampExtractor:
    """@timestamp taken from an app log line with a configured regex (named group `ts`)."""

    def __init__(self, pattern: str, timezone: str) -> None:
        self._search = re.compile(pattern).search
        self._tz = ZoneInfo(timezone)

    def __call__(self, message: str) -> str | None:
        m = self._search(message)
        return parse_timestamp(m["ts"], self._tz) if m else None


class EventBuilder:
    """Encodes records of one file as JSON events; call `set_runtime` once the format is known."""

    def __init__(
        self,
        *,
        path: str,
        identity: FileIdentity,
        host_name: str,
        tags: list[str],
        fields: Mapping[str, Any],
        input_type: str,
        sidecar: bool,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.identity = identity
        self._path = path
        self._host_name = host_name
        self._tags = tags
        self._fields = dict(fields)
        self._kube: dict[str, str] = {}
        self._container_id: str | None = None
        if sidecar:
            self._kube = kubernetes_from_env(env)
            node = env.get("NODE_NAME") or host_name
        else:
            if input_type == "containers":
                self._kube, self._container_id = kubernetes_from_path(path)
            node = host_name
        self._node = node
        self._extra: dict[str, Any] = {}  # from a metadata provider (shipper/kubernetes), merged last
        self._meta_extra = b""
        self._input_type = INPUT_TYPES.get(input_type, input_type)
        self._agent = current_agent(host_name)
        self._head_seen: bytes | None = None
        self._file_identity()
        self.set_runtime(None)

    def set_extra(self, fields: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        """Fields merged into every event (objects merged, lists extended) and into its `@metadata`."""
        self._extra = dict(fields)
        self._meta_extra = b"," + orjson.dumps(dict(metadata))[1:-1] if metadata else b""
        self.set_runtime(self._runtime)

    def _file_identity(self) -> None:
        """`log.file.*`: path, device and inode (as strings, like Filebeat) and, once known, the fingerprint."""
        head = self.identity.head
        self._head_seen = head
        file: dict[str, str] = {
            "path": self._path,
            "device_id": str(self.identity.dev),
            "inode": str(self.identity.ino),
        }
        fp = file_fingerprint(head)
        if fp is not None:
            file["fingerprint"] = fp
        self._log_prefix = b',"log":{"file":' + orjson.dumps(file) + b',"offset":'

    def set_runtime(self, runtime: str | None) -> None:
        self._runtime = runtime
        static: dict[str, Any] = {"tags": self._tags}
        if self._kube:
            kube: dict[str, Any] = {}
            if "pod" in self._kube:
                kube["pod"] = {"name": self._kube["pod"]}
            if "namespace" in self._kube:
                kube["namespace"] = self._kube["namespace"]
            if "container" in self._kube:
                kube["container"] = {"name": self._kube["container"]}
            kube["node"] = {"name": self._node}
            static["kubernetes"] = kube
        container: dict[str, str] = {}
        if self._container_id:
            container["id"] = self._container_id
        if runtime:
            container["runtime"] = runtime
        if container:
            static["container"] = container
        static["host"] = {"name": self._host_name}
        agent = self._agent
        static["agent"] = {
            "type": "logship",
            "version": __version__,
            "name": agent.name,
            "id": agent.id,
            "ephemeral_id": agent.ephemeral_id,
        }
        static["ecs"] = {"version": ECS_VERSION}
        static["input"] = {"type": self._input_type}
        if self._fields:
            static["fields"] = self._fields
        if self._extra:
            static = _merge(static, self._extra)
        self._static = b"," + orjson.dumps(static)[1:-1]  # between `stream` and `log`

    def build(self, rec: Record, read_time: str, timestamp: str | None = None) -> bytes:
        """One event as JSON bytes; `timestamp` (from the line) wins over the record's and read time."""
        return self.build_all([rec], read_time, [timestamp] if timestamp else None)[0]

    def build_run(self, run: DockerRun) -> list[bytes]:
        """Events for a run of Docker lines: those `build_all` makes of their records."""
        if self.identity.head is not self._head_seen:
            self._file_identity()
        times, texts, streams, offsets = run
        # the offset, the opening of `@metadata` and the id: one part, made by one short format per event
        offset_to_id = self.identity.offsets_with_ids(offsets[:-1], _OPEN_METADATA)
        # the event of a record with an encoded message, no flags and the line's timestamp (see build_all),
        # joined from its parts: formatting would cost more, and more again with a precision
        parts = zip(
            repeat(b'{"@timestamp":"'),
            times,
            repeat(b'Z","message":"'),
            texts,
            repeat(b'","stream":"'),
            streams,
            repeat(b'"' + self._static + self._log_prefix),
            offset_to_id,
            repeat(b'"' + self._meta_extra + b"}}"),
            strict=False,
        )
        return list(map(b"".join, parts))

    def build_all(
        self, records: list[Record], read_time: str, timestamps: list[str | None] | None = None
    ) -> list[bytes]:
        """Events for `records`; `timestamps[i]` (taken from the line) wins over the record's own."""
        if self.identity.head is not self._head_seen:  # the head grew (fingerprint known now) or was reset
            self._file_identity()
        if timestamps is not None:
            records = [r._replace(timestamp=t) if t else r for r, t in zip(records, timestamps, strict=True)]
        dumps = orjson.dumps
        # the static fields come before `log`, whose offset is the last thing that changes before the id
        log_prefix = self._static + self._log_prefix
        # what follows the message, up to the offset: per stream, and per form of the message
        after_text = {s: part + log_prefix for s, part in _STREAMS.items()}
        after_encoded = {s: b'"' + part + log_prefix for s, part in _STREAMS.items()}
        # `@metadata` comes last, as `,"@metadata":{"_id":"<id>"<extra>}}`: the aggregator recognises that
        # tail and cuts it off instead of decoding and re-encoding the whole event (aggregator/splice.py).
        middle = _OPEN_METADATA
        tail = b'"' + self._meta_extra + b"}}"
        ids = self.identity.event_ids([r[0] for r in records])
        out: list[bytes] = []
        append = out.append
        last_ts: object = _UNSET  # the opening of the event is made again only when the timestamp changes
        head = head_quoted = b""
        for (offset, _, _, message, stream, ts, flags), event_id in zip(records, ids, strict=True):
            if ts is not last_ts:
                last_ts = ts
                head = b'{"@timestamp":"' + (ts or read_time).encode() + b'","message":'
                head_quoted = head + b'"'
            if type(message) is bytes:  # already JSON-encoded, without its quotes (see formats.Record)
                opening = head_quoted
                after = after_encoded[stream] if stream in after_encoded else b'"' + _stream(stream) + log_prefix
            else:
                opening = head
                message = dumps(message)
                after = after_text[stream] if stream in after_text else _stream(stream) + log_prefix
            meta = b',"flags":' + dumps(flags) + middle if flags else middle
            append(b"%b%b%b%d%b%b%b" % (opening, message, after, offset, meta, event_id, tail))
        return out


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            out[key] = _merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = old + [v for v in value if v not in old]
        else:
            out[key] = value
    return out


def _stream(stream: str | None) -> bytes:
    return b',"stream":' + orjson.dumps(stream) if stream is not None else b""


_STREAMS = {s: _stream(s) for s in ("stdout", "stderr", None)}
_OPEN_METADATA = b'},"@metadata":{"_id":"'  # closes `log`
_UNSET = object()
