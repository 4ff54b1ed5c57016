"""Routing: which index an event goes to (pure logic, no I/O).

Index names use Logstash's sprintf date syntax, `logstash-logs-app-%{+YYYY.MM.dd}`, formatted from the
UTC time of the event's `@timestamp` (Joda-style tokens, as Logstash has them). Routes are tried in
order and the first that matches wins; an event that matches none goes to the default index, never
nowhere. A route matches when its `tag` (if any) is in the event's `tags` and each of its `match`
conditions holds: the field at a dotted path (`input.type`, `@metadata.beat`, `log.file.path`,
`kubernetes.namespace`) is a string or number equal to one of the condition's values, which are globs
(`/var/log/containers/*`). `@metadata` is the Lumberjack event's metadata (Filebeat puts `beat`, `type`
and `version` there); the encoder takes it off the document but routes with it.

An event whose `@timestamp` is missing or unreadable is routed by the time it was received, gets that
time as its `@timestamp` (so the index mapping accepts it), keeps the bad value under
`logship.invalid_timestamp` and is tagged `_timestampparsefailure` (Logstash's `_dateparsefailure` idea).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TIMESTAMP_FAILURE_TAG = "_timestampparsefailure"

# `@metadata.index_family` (set by the shipper from a pod's `logship.io/index` annotation) routes an event
# to its own daily index, ahead of the routes (aggregator.family_index; the template covers it)
FAMILY_INDEX = "logstash-logs-{family}-%{+YYYY.MM.dd}"
_FAMILY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")

# Joda token -> (formatter of a UTC datetime, how much of "YYYY-MM-DDTHH:MM:SS" the value depends on).
_DAY, _HOUR, _MINUTE, _SECOND = 10, 13, 16, 19
_TOKENS: dict[str, tuple[Any, int]] = {
    "yyyy": (lambda d: f"{d.year:04d}", _DAY),
    "YYYY": (lambda d: f"{d.year:04d}", _DAY),
    "yy": (lambda d: f"{d.year % 100:02d}", _DAY),
    "YY": (lambda d: f"{d.year % 100:02d}", _DAY),
    "xxxx": (lambda d: f"{d.isocalendar()[0]:04d}", _DAY),
    "xx": (lambda d: f"{d.isocalendar()[0] % 100:02d}", _DAY),
    "MM": (lambda d: f"{d.month:02d}", _DAY),
    "M": (lambda d: str(d.month), _DAY),
    "dd": (lambda d: f"{d.day:02d}", _DAY),
    "d": (lambda d: str(d.day), _DAY),
    "ww": (lambda d: f"{d.isocalendar()[1]:02d}", _DAY),
    "w": (lambda d: str(d.isocalendar()[1]), _DAY),
    "HH": (lambda d: f"{d.hour:02d}", _HOUR),
    "H": (lambda d: str(d.hour), _HOUR),
    "mm": (lambda d: f"{d.minute:02d}", _MINUTE),
    "ss": (lambda d: f"{d.second:02d}", _SECOND),
}

_BAD_INDEX_CHARS = ' \\/*?"<>|,#:'
_SPRINTF = re.compile(r"%\{\+([^}]*)\}")
_JODA_PART = re.compile(r"'((?:[^']|'')*)'|([A-Za-z])\2*|[^A-Za-z']+")


class PatternError(ValueError):
    """An index pattern that cannot be formatted; the message says which part."""


@dataclass(frozen=True)
class IndexPattern:
    """A compiled `...%{+FORMAT}...` index name; `format(utc)` renders it for one UTC datetime."""

    source: str
    parts: tuple[Any, ...]  # str literals and token formatters
    granularity: int  # chars of the canonical UTC key the name depends on (0: a constant name)

    @property
    def static_prefix(self) -> str:
        """The constant leading text, e.g. `logstash-logs-app-` (for the template's index pattern)."""
        prefix = ""
        for part in self.parts:
            if not isinstance(part, str):
                break
            prefix += part
        return prefix

    def format(self, utc: datetime) -> str:
        return "".join(p if isinstance(p, str) else p(utc) for p in self.parts)


def _compile_joda(fmt: str, source: str) -> tuple[list[Any], int]:
    parts: list[Any] = []
    granularity = 0
    pos = 0
    while pos < len(fmt):
        m = _JODA_PART.match(fmt, pos)
        if m is None:  # an unterminated quote
            raise PatternError(f"{source!r}: unterminated quote in date format {fmt!r}")
        pos = m.end()
        if m.group(1) is not None:
            parts.append(m.group(1).replace("''", "'"))
        elif m.group(2) is not None:
            token = m.group(0)
            if token not in _TOKENS:
                known = ", ".join(_TOKENS)
                raise PatternError(f"{source!r}: unsupported date token {token!r} (supported: {known})")
            fn, gran = _TOKENS[token]
            parts.append(fn)
            granularity = max(granularity, gran)
        else:
            parts.append(m.group(0))
    return parts, granularity


def compile_pattern(source: str) -> IndexPattern:
    """Compile an index name with `%{+FORMAT}` date references; raises PatternError if unusable."""
    parts: list[Any] = []
    granularity = 0
    pos = 0
    for m in _SPRINTF.finditer(source):
        if m.start() > pos:
            parts.append(source[pos : m.start()])
        sub, gran = _compile_joda(m.group(1), source)
        parts.extend(sub)
        granularity = max(granularity, gran)
        pos = m.end()
    if pos < len(source):
        parts.append(source[pos:])
    if "%{" in "".join(p for p in parts if isinstance(p, str)):
        raise PatternError(f"{source!r}: only date references like %{{+YYYY.MM.dd}} are supported")
    literal = "".join(p for p in parts if isinstance(p, str))
    if not source or literal != literal.lower() or any(c in literal for c in _BAD_INDEX_CHARS):
        raise PatternError(
            f"{source!r}: not a valid index name (lowercase, without spaces or any of {_BAD_INDEX_CHARS})"
        )
    merged: list[Any] = []
    for p in parts:  # join adjacent literals so format() does less work
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return IndexPattern(source, tuple(merged), granularity)


# Only timestamps OpenSearch's default date format (strict_date_optional_time) accepts get a key; any
# other is replaced by the receive time instead of being left for OpenSearch to reject the document.
_FAST_Z = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?Z",
    re.ASCII,  # \d must not match other scripts' digits
)
STRICT_Z_TIMESTAMP = _FAST_Z  # `YYYY-MM-DDTHH:MM:SS[.f]Z` with a plausible date and time (the encoder's cache)
_ISO_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?", re.ASCII
)


def utc_key(value: Any) -> str | None:
    """Canonical UTC `YYYY-MM-DDTHH:MM:SS` of an ISO-8601 timestamp, or None if it is not one.

    Shippers send `...Z` timestamps, so those take a slicing fast path; anything with an offset is
    converted to UTC (`2026-01-01T00:30:00+02:00` is 2025-12-31T22:30:00). A timestamp without an
    offset is taken as UTC.
    """
    if not isinstance(value, str):
        return None
    if value[-1:] == "Z" and _FAST_Z.fullmatch(value):
        return value[:19]
    if not _ISO_SHAPE.fullmatch(value):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"


def _parse_key(key: str) -> datetime:
    return datetime(
        int(key[0:4]),
        int(key[5:7] or 1),
        int(key[8:10] or 1),
        int(key[11:13] or 0),
        int(key[14:16] or 0),
        int(key[17:19] or 0),
        tzinfo=UTC,
    )


def iso_utc(dt: datetime) -> str:
    """`2026-01-01T00:30:00.123Z`: the `@timestamp` shape shippers send (ms precision)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def family_prefix_pattern(family_index: str) -> IndexPattern | None:
    """What every family's index starts with (`logstash-logs-`), for the template's index patterns."""
    before = family_index.split("{family}")[0]
    return compile_pattern(before) if before else None


def check_family_index(value: str) -> str:
    """Raises PatternError unless `value` has `{family}` and renders to valid index names."""
    if "{family}" not in value:
        raise PatternError(f"{value!r}: needs {{family}} where the pod's logship.io/index value goes")
    compile_pattern(value.replace("{family}", "x"))
    return value


def field_value(event: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (`log.file.path`), or a literal dotted key; None when absent."""
    if path in event:
        return event[path]
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@dataclass(frozen=True)
class RouteSpec:
    """One route as configured: an optional tag, field conditions (path -> globs), the index."""

    index: str
    tag: str | None = None
    match: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Route:
    tag: str | None
    pattern: IndexPattern
    conditions: tuple[tuple[str, Any], ...] = ()  # (dotted path, compiled regex of its globs)

    def matches(self, event: dict[str, Any], tags: Any, meta: Any) -> bool:
        if self.tag is not None:
            if isinstance(tags, str):
                if tags != self.tag:
                    return False
            elif not isinstance(tags, list | tuple) or self.tag not in tags:
                return False
        for path, regex in self.conditions:
            if path.startswith("@metadata."):
                value = field_value(meta, path[10:]) if isinstance(meta, dict) else None
            else:
                value = field_value(event, path)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return False
            if not regex.fullmatch(str(value)):
                return False
        return True


def _compile_route(spec: RouteSpec | tuple[str, str]) -> Route:
    if isinstance(spec, tuple):  # (tag, index): the tag-only form
        return Route(spec[0], compile_pattern(spec[1]))
    conditions = tuple(
        (path, re.compile("|".join(fnmatch.translate(g) for g in globs), re.DOTALL)) for path, globs in spec.match
    )
    return Route(spec.tag, compile_pattern(spec.index), conditions)


class Router:
    """Chooses each event's index; caches the rendered name per (pattern, time bucket)."""

    def __init__(
        self, routes: list[RouteSpec] | list[tuple[str, str]], default_index: str, family_index: str = FAMILY_INDEX
    ) -> None:
        self.routes = [_compile_route(r) for r in routes]
        self.default = compile_pattern(default_index)
        self.family_index = family_index
        self._families: dict[str, IndexPattern] = {}
        # Tag-only routes before the first route with field conditions: for an event with one tag, the
        # first of these with that tag is the answer without looking at any field (the fast path).
        self._by_tag: dict[str, tuple[int, IndexPattern]] = {}
        for i, r in enumerate(self.routes):
            if r.conditions or r.tag is None:
                break
            self._by_tag.setdefault(r.tag, (i, r.pattern))
        self._tags_only = all(not r.conditions and r.tag is not None for r in self.routes)
        self._cache: dict[tuple[int, str], str] = {}

    def tag_decides(self, tag: str | None) -> bool:
        """True if an event whose only tag is `tag` (None: no tags) is routed without looking at fields."""
        return self._tags_only or (tag is not None and tag in self._by_tag)

    @property
    def patterns(self) -> list[IndexPattern]:
        families = family_prefix_pattern(self.family_index)
        return [r.pattern for r in self.routes] + [self.default] + ([families] if families else [])

    def family_pattern(self, family: Any) -> IndexPattern | None:
        """The pattern of an index family named in `@metadata.index_family`; None if the name is unusable."""
        if not isinstance(family, str) or not _FAMILY.match(family):
            return None
        pattern = self._families.get(family)
        if pattern is None:
            if len(self._families) > 1_000:  # bounded: pods choose these names
                self._families.clear()
            pattern = self._families[family] = compile_pattern(self.family_index.replace("{family}", family))
        return pattern

    def index_for_family(self, pattern: IndexPattern, event: dict[str, Any], received: datetime) -> str:
        return self._index_slow(event, pattern, received)

    def pattern_for(self, tags: Any, event: dict[str, Any] | None = None, meta: Any = None) -> IndexPattern:
        """The first route (in config order) that matches; else the default."""
        if self._tags_only and not isinstance(tags, str | list | tuple):
            return self.default
        ev = event if event is not None else {}
        for r in self.routes:
            if r.matches(ev, tags, meta):
                return r.pattern
        return self.default

    def index_for(self, event: dict[str, Any], received: datetime, meta: Any = None) -> str:
        """The index of `event` (`meta`: its `@metadata`, if taken off); repairs a bad `@timestamp` in place."""
        tags = event.get("tags")
        if meta is None:
            meta = event.get("@metadata")
        hit = None
        if type(tags) is list and len(tags) == 1 and type(tags[0]) is str:  # the usual shape: fast path
            hit = self._by_tag.get(tags[0])
        if hit is not None:
            pattern = hit[1]
        elif self._tags_only and type(tags) is list and len(tags) == 1:
            pattern = self.default
        else:
            pattern = self.pattern_for(tags, event, meta)
        ts = event.get("@timestamp")
        if type(ts) is str and pattern.granularity and ts[-1:] == "Z" and _FAST_Z.fullmatch(ts):
            cached = self._cache.get((id(pattern), ts[: pattern.granularity]))
            if cached is not None:
                return cached
        return self._index_slow(event, pattern, received)

    def _index_slow(self, event: dict[str, Any], pattern: IndexPattern, received: datetime) -> str:
        if pattern.granularity == 0:
            if "@timestamp" not in event or utc_key(event["@timestamp"]) is None:
                self._flag(event, received)
            return pattern.format(received)
        key = utc_key(event.get("@timestamp"))
        if key is not None:
            name = self._render(pattern, key)
            if name is not None:
                return name
        self._flag(event, received)
        received_key = iso_utc(received)[:19]
        name = self._render(pattern, received_key)
        assert name is not None  # the receive time is always a valid date
        return name

    def _render(self, pattern: IndexPattern, key: str) -> str | None:
        short = key[: pattern.granularity]
        cache_key = (id(pattern), short)
        name = self._cache.get(cache_key)
        if name is None:
            try:
                name = pattern.format(_parse_key(short))
            except ValueError:  # e.g. month 13 that slipped through the fast path
                return None
            if len(self._cache) > 10_000:  # bounded: old buckets are rarely needed again
                self._cache.clear()
            self._cache[cache_key] = name
        return name

    @staticmethod
    def _flag(event: dict[str, Any], received: datetime) -> None:
        if "@timestamp" in event:
            logship = event.get("logship")
            if not isinstance(logship, dict):
                logship = {}
                event["logship"] = logship
            logship["invalid_timestamp"] = str(event["@timestamp"])[:256]
        event["@timestamp"] = iso_utc(received)
        tags = event.get("tags")
        if isinstance(tags, list):
            if TIMESTAMP_FAILURE_TAG not in tags:
                tags.append(TIMESTAMP_FAILURE_TAG)
        elif isinstance(tags, str):
            event["tags"] = [tags, TIMESTAMP_FAILURE_TAG]
        else:
            event["tags"] = [TIMESTAMP_FAILURE_TAG]
