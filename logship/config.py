"""Config loading shared by shipper and aggregator.

A config file is YAML with `${VAR}` / `${VAR:default}` substitution in each value, holding a `shipper:` and/or an
`aggregator:` section. Each side validates its own section with a pydantic model; every error names
the file and the dotted key, so an operator can fix it without reading code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from logship.lumberjack.client import parse_host

SECTIONS = ("shipper", "aggregator")

# `$${` is an escape for a literal `${`; otherwise `${NAME}` or `${NAME:default}` (default up to the first `}`).
_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_WHOLE_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::[^}]*)?\}")


class ConfigError(Exception):
    """A config file that cannot be used; the message says where and what to do."""


def _substitute(text: str, environ: Mapping[str, str], missing: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name is None:  # the `$${` escape
            return "${"
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    # one pass: a substituted value is never scanned again, so `${` inside a value stays as it is
    return _ENV_REF.sub(replace, text)


def substitute_env(text: str, env: Mapping[str, str] | None = None, source: str = "<config>") -> str:
    """Replace `${VAR}` and `${VAR:default}` in one string; an unset variable without default is an error.

    `$${VAR}` escapes a literal `${VAR}`.
    """
    environ = os.environ if env is None else env
    missing: list[str] = []
    result = _substitute(text, environ, missing)
    if missing:
        names = ", ".join(sorted(set(missing)))
        raise ConfigError(
            f"{source}: environment variable(s) {names} not set; set them or give a default as ${{VAR:default}}"
        )
    return result


def substitute_tree(data: Any, env: Mapping[str, str] | None = None, source: str = "<config>") -> Any:
    """Substitute env references in every string scalar of parsed YAML; keys and structure are kept.

    Substitution happens after parsing, so a value can never change the YAML's structure: a password
    with `#`, `: ` or quotes stays exactly that string, and a reference inside a comment is ignored.
    A scalar that is only a reference and comes out empty (`name: ${NODE_NAME:}` with NODE_NAME unset)
    becomes null, as an empty YAML value would be, so the setting takes its default.
    """
    environ = os.environ if env is None else env
    missing: list[tuple[str, str]] = []

    def walk(node: Any, key: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{key}.{k}" if key else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{key}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            names: list[str] = []
            value = _substitute(node, environ, names)
            missing.extend((key, n) for n in names)
            if value == "" and _WHOLE_REF.fullmatch(node):
                return None
            return value
        return node

    result = walk(data, "")
    if missing:
        detail = "; ".join(f"{key}: ${{{name}}}" for key, name in missing)
        names = ", ".join(sorted({n for _, n in missing}))
        raise ConfigError(
            f"{source}: environment variable(s) {names} not set ({detail}); "
            "set them or give a default as ${VAR:default}"
        )
    return result


def load_file(path: str | Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read a YAML config file, substitute env references per value, and return the top-level mapping."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found; pass an existing file with -c") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory; pass a config file with -c") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); save the config file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        hint = ""
        line = text.splitlines()[mark.line] if mark is not None and mark.line < len(text.splitlines()) else ""
        if "${" in line:  # `{a: ${X}}`: in a flow mapping `{` is syntax, so the reference needs quotes
            hint = '; inside { } or [ ] put a ${VAR} reference in quotes, e.g. {port: "${PORT:5044}"}'
        raise ConfigError(f"{p}: invalid YAML{where}: {problem}{hint}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping with a 'shipper' or 'aggregator' section")
    unknown = sorted(str(k) for k in data if k not in SECTIONS)
    if unknown:
        raise ConfigError(
            f"{p}: unknown top-level key(s) {', '.join(map(repr, unknown))}; expected 'shipper' and/or 'aggregator'"
        )
    result = substitute_tree(data, env, source=str(p))
    assert isinstance(result, dict)
    return result


M = TypeVar("M", bound=BaseModel)


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validate_section(model: type[M], data: Mapping[str, Any], section: str, source: str) -> M:
    """Validate `data[section]` with `model`; errors name `source`, the dotted key and the problem."""
    if section not in data:
        raise ConfigError(f"{source}: no '{section}:' section; add one (see docs/configuration.md)")
    body = data[section]
    if body is None:
        body = {}
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _dotted((section, *err["loc"]))
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check spelling; see docs/configuration.md)"
            lines.append(f"{source}: {key}: {msg}")
        raise ConfigError("\n".join(lines)) from None


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`1.5`, `"250ms"`, `"30s"`, `"5m"`, `"24h"`, `"7d"` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 250ms")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    raise ValueError(f"expected a duration such as 30s, 5m or 250ms, got {value!r}")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_size(value: Any) -> int:
    """`1048576`, `"512KiB"`, `"5MiB"`, `"1GB"` -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 5MiB or 512KiB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            return int(float(m.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"expected a size such as 5MiB or 512KiB, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; accepts numbers or strings with a unit (ms, s, m, h, d)."""

ByteSize = Annotated[int, BeforeValidator(parse_size)]
"""Bytes; accepts integers or strings with a unit (B, KB, KiB, MB, MiB, GB, GiB)."""


def read_secret(value: str | None, file: str | None, key: str) -> str | None:
    """A credential given inline (usually via `${ENV}`) or as a file path (a mounted Kubernetes Secret).

    The error names the config key, never the value.
    """
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read secret file {file}: {exc.strerror}") from None
    return value or None


def _host_port(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected host:port, for example logship-aggregator:5044 or [fd00::1]:5044")
    try:
        parse_host(value)
    except ValueError as exc:
        raise ValueError(f"{exc} (for example logship-aggregator:5044 or [fd00::1]:5044)") from None
    return value.strip()


HostPort = Annotated[str, BeforeValidator(_host_port)]
"""`host`, `host:port` or `[ipv6]:port`, checked by the parser the Lumberjack client connects with."""


class Backoff(StrictModel):
    """Capped exponential backoff with jitter (logship.backoff): the first delay and the cap."""

    initial: Duration = Field(1.0, gt=0)
    max: Duration = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.max < self.initial:
            raise ValueError(f"max ({self.max:g}s) must be at least initial ({self.initial:g}s)")
        return self
