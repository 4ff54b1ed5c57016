"""Pure: per-pod control by `logship.io/*` annotations.

    logship.io/exclude: "true"                         skip every container of the pod
    logship.io/exclude-<container>: "true"             skip one container
    logship.io/multiline.start_pattern[-<container>]   join lines that do not match into the previous event
    logship.io/timestamp.pattern[-<container>]         @timestamp from the line, named group (?P<ts>...)
    logship.io/index: "<family>"                       route to logstash-logs-<family>-YYYY.MM.dd
    logship.io/tags: "a,b"                             extra tags

A per-container key wins over the pod-wide one. An invalid value is ignored (as if the annotation were
absent) and reported in `errors` as `(annotation, problem)`; it never stops the shipper.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

PREFIX = "logship.io/"
_FAMILY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_TAG = re.compile(r"^[^\s,]{1,128}$")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}
_MAX_PATTERN = 1024


@dataclass(slots=True)
class PodControl:
    exclude: bool = False
    exclude_containers: frozenset[str] = frozenset()
    multiline: dict[str | None, str] = field(default_factory=dict)  # container (None: every one) -> pattern
    timestamp: dict[str | None, str] = field(default_factory=dict)
    index: str | None = None
    tags: tuple[str, ...] = ()
    errors: list[tuple[str, str]] = field(default_factory=list)

    def excluded(self, container: str) -> bool:
        return self.exclude or container in self.exclude_containers

    def multiline_for(self, container: str) -> str | None:
        return self.multiline.get(container, self.multiline.get(None))

    def timestamp_for(self, container: str) -> str | None:
        return self.timestamp.get(container, self.timestamp.get(None))

    @property
    def empty(self) -> bool:
        return not (self.exclude or self.exclude_containers or self.multiline or self.timestamp) and (
            self.index is None and not self.tags
        )


def _bool(value: str) -> bool | None:
    v = value.strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


def _regex(value: str, need_ts: bool) -> str | None:
    """The problem with a pattern, or None if it is usable."""
    if len(value) > _MAX_PATTERN:
        return f"longer than {_MAX_PATTERN} characters"
    try:
        compiled = re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    if need_ts and "ts" not in compiled.groupindex:
        return "needs a named group (?P<ts>...) around the timestamp"
    return None


def parse(annotations: Mapping[str, str]) -> PodControl:
    ctl = PodControl()
    excluded: set[str] = set()
    for key, value in annotations.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :]
        if not isinstance(value, str):
            ctl.errors.append((key, "value is not a string"))
            continue
        if name == "exclude" or name.startswith("exclude-"):
            flag = _bool(value)
            if flag is None:
                ctl.errors.append((key, f"{value[:64]!r} is not true or false"))
            elif flag and name == "exclude":
                ctl.exclude = True
            elif flag:
                excluded.add(name[len("exclude-") :])
        elif name.startswith(("multiline.start_pattern", "timestamp.pattern")):
            base, dash, container = name.partition("-")
            if base not in ("multiline.start_pattern", "timestamp.pattern") or (dash and not container):
                ctl.errors.append((key, "unknown logship.io annotation"))
                continue
            problem = _regex(value, need_ts=base == "timestamp.pattern")
            if problem is not None:
                ctl.errors.append((key, problem))
                continue
            target = ctl.multiline if base == "multiline.start_pattern" else ctl.timestamp
            target[container or None] = value
        elif name == "index":
            family = value.strip()
            if _FAMILY.match(family):
                ctl.index = family
            else:
                ctl.errors.append(
                    (key, f"{value[:64]!r} is not an index family (lowercase letters, digits, '-', '_', '.')")
                )
        elif name == "tags":
            tags = [t.strip() for t in value.split(",") if t.strip()]
            bad = [t for t in tags if not _TAG.match(t)]
            if bad:
                ctl.errors.append((key, f"invalid tag {bad[0][:64]!r}"))
            ctl.tags = tuple(t for t in tags if _TAG.match(t))[:32]
        else:
            ctl.errors.append((key, "unknown logship.io annotation"))
    ctl.exclude_containers = frozenset(excluded)
    return ctl
