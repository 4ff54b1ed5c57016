"""The `_bulk` request body and what its response means for each item (pure logic, no I/O).

Every event is serialised exactly once, into a `create` action line carrying the event id as `_id`
and a document line; retries resend those same bytes. `create` (not `index`) makes a resent window
harmless: an id OpenSearch already has answers 409, which counts as delivered. What each item's
answer means is decided in `retry.py`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import xxhash

from aggregator.accumulator import BulkItem, Ticket
from aggregator.routing import STRICT_Z_TIMESTAMP, Router
from aggregator.splice import Spliced

# the prefix of each source seen lately: a node's Filebeat tails a few hundred files at most
_prefixes: dict[tuple[Any, ...], str] = {}
_PREFIXES_KEPT = 4096


def derived_id(event: dict[str, Any]) -> str:
    """A stable id for an event that came without one (e.g. from a real Filebeat without `add_id`).

    Built from where the line came from (host or agent, file path and identity), its offset, and its
    `@timestamp`: a window resent as-is gets the same ids, while a rotated file that reuses a path and
    offsets never collides with an older line (which `create` would otherwise treat as delivered).
    Shaped like the shipper's ids (shipper/identity.py): a hash of the source (20 hex digits), the
    offset (12 hex digits), then a hash of the timestamp (8), so one file's ids share a prefix and
    sort by offset, which makes OpenSearch's id lookup cheaper than for random ids.
    Without a file offset there is nothing stable to build it from, so the id is random (no dedup, no
    loss).
    """
    log = event.get("log")
    if not isinstance(log, dict):
        return uuid.uuid4().hex
    offset = log.get("offset")
    file = log.get("file")
    if offset is None or not isinstance(file, dict) or file.get("path") is None:
        return uuid.uuid4().hex
    host = event.get("host")
    agent = event.get("agent")
    who = (host.get("name") if isinstance(host, dict) else None) or (
        agent.get("id") or agent.get("name") if isinstance(agent, dict) else None
    )
    source = (who, file.get("path"), file.get("inode"), file.get("device_id"), file.get("fingerprint"))
    prefix = _source_prefix(source)
    ts = event.get("@timestamp")
    stamp = xxhash.xxh3_64_hexdigest(ts.encode("utf-8", "surrogatepass") if type(ts) is str else _joined((ts,)))[:8]
    if type(offset) is int and 0 <= offset < 1 << 48:
        return f"{prefix}{offset:012x}{stamp}"
    # an offset that is not a small non-negative integer still identifies the line: hash it whole
    return prefix + _digest20((offset,)) + stamp


def _source_prefix(source: tuple[Any, ...]) -> str:
    try:
        prefix = _prefixes.get(source)
    except TypeError:  # a field that is a JSON object or array: nothing to cache it by
        return _digest20(source)
    if prefix is None:
        if len(_prefixes) >= _PREFIXES_KEPT:
            _prefixes.clear()
        prefix = _prefixes[source] = _digest20(source)
    return prefix


def _digest20(parts: tuple[Any, ...]) -> str:
    """20 hex digits (80 bits) of a hash of `parts`, as the shipper's id prefixes."""
    return xxhash.xxh3_128_hexdigest(_joined(parts))[:20]


def _joined(parts: tuple[Any, ...]) -> bytes:
    return "\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8", "surrogatepass")


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc)
    except (orjson.JSONEncodeError, TypeError):
        # orjson refuses integers beyond 64 bits and some exotic values; the stdlib encoder does not
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode()


# `@timestamp` tails of the shape shippers and Filebeat send (`...:SS.sssZ`), ASCII digits only. With one of
# these, an event's index depends on nothing but its first tag and `@timestamp[:19]` (see `Encoder`).
_MS_TAILS = frozenset(f".{ms:03d}Z" for ms in range(1000))


class Encoder:
    """Turns received events into bulk items: route, take the id, strip `@metadata`, serialise once.

    Fast path: an event with exactly one tag, or none, that the router routes by that tag alone
    (`Router.tag_decides`), whose `@timestamp` is `YYYY-MM-DDTHH:MM:SS.sssZ` takes its action-line prefix
    from a cache keyed by (tag, `@timestamp[:19]`). The cache is filled only after the router has routed
    such an event without repairing its timestamp and the whole timestamp matched the router's strict
    shape, so a hit gives exactly what the router would (the millisecond tail of that shape never changes
    the outcome); everything else goes through the router. A logship shipper event still in bytes
    (`splice.Spliced`) that hits the cache is spliced, never decoded; on a miss it is decoded.
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self._action_prefix: dict[str, bytes] = {}
        # tag (None: no tags) -> @timestamp[:19] -> (action prefix, index)
        self._fast: dict[str | None, dict[str, tuple[bytes, str]]] = {}
        self._fast_size = 0

    def _prefix(self, index: str) -> bytes:
        prefix = self._action_prefix.get(index)
        if prefix is None:
            if len(self._action_prefix) > 10_000:
                self._action_prefix.clear()
            prefix = b'{"create":{"_index":' + orjson.dumps(index) + b',"_id":'
            self._action_prefix[index] = prefix
        return prefix

    def _remember(self, tag: str | None, ts: str, entry: tuple[bytes, str]) -> None:
        if self._fast_size >= 10_000:  # bounded: one entry per tag and second of event time
            self._fast.clear()
            self._fast_size = 0
        self._fast.setdefault(tag, {})[ts[:19]] = entry
        self._fast_size += 1

    def encode(self, events: Sequence[dict[str, Any] | Spliced], received: datetime, ticket: Ticket) -> list[BulkItem]:
        out: list[BulkItem] = []
        append = out.append
        index_for = self.router.index_for
        tag_decides = self.router.tag_decides
        prefixes = self._action_prefix
        fast = self._fast
        tails = _MS_TAILS
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        strict_z = STRICT_Z_TIMESTAMP.fullmatch
        for event in events:
            if type(event) is Spliced:
                # a logship shipper event: spliced when its route is cached, else decoded (see splice.py)
                payload, cut, spliced_id, spliced_tag, stamp = event
                if stamp[19:] in tails:
                    cached = fast.get(spliced_tag)
                    hit = cached.get(stamp[:19]) if cached is not None else None
                    if hit is not None:
                        action_prefix = hit[0]
                        data = b"".join((action_prefix, b'"', spliced_id, b'"}}\n', payload[:cut], b"}\n"))
                        append(BulkItem(data, len(action_prefix) + len(spliced_id) + 5, hit[1], ticket))
                        continue
                event = event.decode()
            if type(event) is not dict:  # a JSON scalar or array: keep it, as a message
                event = {"message": event if isinstance(event, str) else _dumps_any(event)}
            meta = event.pop("@metadata", None)
            message = event.get("message")
            if type(message) is str and message[-1:] == "\n" and not _from_logship(event):
                strip_newline(event, message)
            event_id = family = None
            if type(meta) is dict:
                event_id = meta.get("_id")
                if "index_family" in meta:
                    family = self.router.family_pattern(meta["index_family"])
            if type(event_id) is not str or not event_id or (len(event_id) > 128 and len(event_id.encode()) > 512):
                event_id = derived_id(event)
            tags = event.get("tags")
            ts: Any = event.get("@timestamp")
            entry = None
            cacheable = False
            tag: str | None = None  # None: no tags at all (the default route)
            if family is not None:
                index = self.router.index_for_family(family, event, received)
                entry = (prefixes.get(index) or self._prefix(index), index)
            elif type(ts) is str and ts[19:] in tails:
                if type(tags) is list and len(tags) == 1 and type(tags[0]) is str:
                    tag = tags[0]
                    cacheable = tag_decides(tag)
                elif tags is None:
                    cacheable = tag_decides(None)
                if cacheable:
                    by_second = fast.get(tag)
                    if by_second is not None:
                        entry = by_second.get(ts[:19])
            if entry is None:
                index = index_for(event, received, meta)
                prefix = prefixes.get(index)
                if prefix is None:
                    prefix = self._prefix(index)
                entry = (prefix, index)
                # only if the router kept the timestamp and it has the strict shape (then [:19] decides)
                if cacheable and event.get("@timestamp") is ts and isinstance(ts, str) and strict_z(ts):
                    self._remember(tag, ts, entry)
            try:
                source = dumps(event, option=newline)
            except (orjson.JSONEncodeError, TypeError):
                source = _dumps(event) + b"\n"
            action = entry[0] + dumps(event_id) + b"}}\n"
            append(BulkItem(action + source, len(action), entry[1], ticket))
        return out


NEWLINE_FLAG = "trailing_newline_stripped"


def _from_logship(event: dict[str, Any]) -> bool:
    # logship's shipper strips the line's newline itself; a trailing one it sends is content (a
    # multi-line record ending in an empty line) and stays
    agent = event.get("agent")
    return type(agent) is dict and agent.get("type") == "logship"


def strip_newline(event: dict[str, Any], message: str) -> None:
    """Filebeat 9's filestream container parser keeps the line's `\n` (and `\r\n`): drop it, flag it.

    Applied to events of other shippers only (see `_from_logship`); the flag in `log.flags` says the
    message was changed.
    """
    event["message"] = message[:-2] if message[-2:] == "\r\n" else message[:-1]
    log_field = event.get("log")
    if log_field is None:
        log_field = event["log"] = {}
    if type(log_field) is dict:
        flags = log_field.get("flags")
        if type(flags) is list:
            if NEWLINE_FLAG not in flags:
                flags.append(NEWLINE_FLAG)
        else:
            log_field["flags"] = [NEWLINE_FLAG] if flags is None else [flags, NEWLINE_FLAG]


def _dumps_any(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def body_of(items: list[BulkItem]) -> bytes:
    return b"".join([item.data for item in items])
