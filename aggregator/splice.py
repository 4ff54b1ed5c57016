"""A received window's payloads as events, keeping logship shipper events as bytes (pure logic).

Decoding every event into a dict and encoding it again for `_bulk` is most of an aggregator's CPU. The
logship shipper writes each event as one JSON object whose last member is `"@metadata":{"_id":"<id>"}`
(`shipper/event.py`). For such a payload the document OpenSearch needs is the payload with that member
cut off, and routing needs only the first tag and `@timestamp`, so the event is kept as a `Spliced`:
checked to be one valid UTF-8 JSON object (by msgspec, which reads the few fields routing needs and skips
the rest without building objects), never decoded into a dict. `bulk.Encoder` turns it into a bulk item
by splicing bytes when its cached route for that tag and second applies, and decodes it otherwise.

Why the cut is safe: `,"@metadata":{"_id":"<id>"}` directly followed by the payload's last `}` can only
be a member of the outermost object, and an id of letters and digits needs no escaping. Everything else
(other shippers, extra `@metadata` keys, several tags, other agents) takes the decoding path unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import msgspec
import orjson

from logship.lumberjack.server import decode_events

_META_MEMBER = b',"@metadata":{"_id":"'
_META_LEN = len(_META_MEMBER)
_MAX_ID = 128


class _Logship(msgspec.Struct):
    type: Literal["logship"]  # other shippers' messages may need their newline taken off


class _Head(msgspec.Struct):
    """The only fields routing a shipper event looks at; msgspec skips (and checks) all others.

    Decoding fails (and the event takes the decoding path) unless `agent.type` is "logship" and there is
    at most one tag: msgspec checks both without building the values.
    """

    agent: _Logship
    timestamp: str = msgspec.field(name="@timestamp", default="")
    tags: tuple[str] | None = None


_decode_head = msgspec.json.Decoder(_Head).decode
_new_tuple = tuple.__new__


class Spliced(NamedTuple):
    """A logship shipper event kept as its bytes: the document is `payload[:cut] + b"}"`."""

    payload: bytes
    cut: int  # where `,"@metadata":...` starts
    event_id: bytes  # letters and digits only
    tag: str | None  # its only tag; None when it has no `tags`
    timestamp: str

    def decode(self) -> dict[str, Any]:
        event: dict[str, Any] = orjson.loads(self.payload)
        return event


def _valid_utf8(payload: bytes) -> bool:
    try:
        payload.decode()
    except UnicodeDecodeError:
        return False
    return True


def splice(payload: bytes) -> Spliced | None:
    """`payload` as a `Spliced`, or None if it is not a logship shipper event this module can prove safe."""
    if payload[-3:] != b'"}}':
        return None
    cut = payload.rfind(_META_MEMBER)
    if cut <= 0:
        return None
    event_id = payload[cut + _META_LEN : -3]
    if not (0 < len(event_id) <= _MAX_ID and event_id.isalnum()):
        return None
    if not payload.isascii() and not _valid_utf8(payload):  # msgspec does not check skipped strings
        return None
    try:
        head = _decode_head(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    tags = head.tags
    # tuple.__new__ skips the NamedTuple's generated Python-level __new__ (one per event)
    return _new_tuple(Spliced, (payload, cut, event_id, tags[0] if tags else None, head.timestamp))


def decode_window(payloads: list[bytes]) -> tuple[list[dict[str, Any] | Spliced], int]:
    """The window's events (logship shipper events as `Spliced`), and how many were not JSON objects.

    A payload that is not a JSON object is kept as text with a flag, never dropped (as the server does).
    """
    return decode_events(payloads, keep=splice)
