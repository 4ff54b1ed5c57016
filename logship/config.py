"""Config loading shared by shipper and aggregator.

A config file is YAML with `${VAR}` / `${VAR:default}` substitution in each value, holding a `shipper:` and/or an
`aggregator:` section. Each side validates its own section with msgspec structs (`StrictModel`); every error
names the file and the dotted key, so an operator can fix it without reading code.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Self, TypeVar, Union, get_args, get_origin

import msgspec
import yaml

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


class StrictModel(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base for config sections: unknown keys are errors, so typos never pass silently.

    Load one with `from_dict` (or `validate_section`): that applies the `parse(...)`/`check(...)` hooks of
    the fields and collects every problem with its dotted key. Constructing one directly (code and tests)
    runs only `__post_init__`, the checks that span fields.
    """

    @classmethod
    def from_dict(cls, data: Any, key: str = "") -> Self:
        """Validate `data` (parsed YAML); a ConfigError lists each problem as `<dotted key>: <what>`."""
        return _validate(cls, data, key, "")


M = TypeVar("M", bound=StrictModel)


def validate_section(model: type[M], data: Mapping[str, Any], section: str, source: str) -> M:
    """Validate `data[section]` with `model`; errors name `source`, the dotted key and the problem."""
    if section not in data:
        raise ConfigError(f"{source}: no '{section}:' section; add one (see docs/configuration.md)")
    return _validate(model, data[section], section, f"{source}: ")


def _validate(model: type[M], data: Any, key: str, prefix: str) -> M:
    errors: _Errors = []
    result = _build(model, {} if data is None else data, key, errors)  # an empty YAML section is all defaults
    if errors:
        raise ConfigError("\n".join(f"{prefix}{k}: {msg}" if k else f"{prefix}{msg}" for k, msg in errors))
    assert isinstance(result, model)
    return result


def parse(hook: Callable[[Any], Any]) -> msgspec.Meta:
    """Field metadata: `hook` turns the raw YAML value into the field's type before it is validated."""
    return msgspec.Meta(extra={"parse": hook})


def check(hook: Callable[[Any], Any]) -> msgspec.Meta:
    """Field metadata: `hook` checks (and may normalise) the validated value; ValueError names the problem."""
    return msgspec.Meta(extra={"check": hook})


_Errors = list[tuple[str, str]]
_UNKNOWN_KEY = "unknown key (check spelling; see docs/configuration.md)"
_AT = re.compile(r"^(.*) - at `\$(.*)`$", re.DOTALL)
# msgspec names JSON types; a config file is YAML, whose users think in lists and mappings
_TYPE_NAME = re.compile(r"`[^`]*`")
_YAML_WORDS = {"array": "list", "object": "mapping"}


def _hooks(tp: Any, kind: str) -> list[Callable[[Any], Any]]:
    return [
        m.extra[kind]
        for m in getattr(tp, "__metadata__", ())
        if isinstance(m, msgspec.Meta) and m.extra and kind in m.extra
    ]


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


@functools.cache
def _needs_walk(tp: Any) -> bool:
    """Whether a value of this type holds a struct or a hook, so it is built piece by piece."""
    if _is_struct(tp):
        return True
    if get_origin(tp) is Annotated:
        return bool(_hooks(tp, "parse") or _hooks(tp, "check")) or _needs_walk(tp.__origin__)
    if get_origin(tp) is dict:
        return True  # item by item, so an error names the key (msgspec would say `[...]`)
    return any(_needs_walk(arg) for arg in get_args(tp) if not isinstance(arg, str | int | bool))


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _dec_hook(tp: Any, value: Any) -> Any:
    if tp is Secret:
        if isinstance(value, str):
            return Secret(value)
        raise ValueError(f"Expected a string, got {_kind(value)}")  # never the value: it is a credential
    raise NotImplementedError


def _leaf(tp: Any, value: Any, key: str, errors: _Errors) -> Any:
    """msgspec validates and converts (strict=False: `"5044"` from `${PORT}` becomes 5044)."""
    try:
        return msgspec.convert(value, tp, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        msg, where = str(exc), ""
        if m := _AT.match(msg):
            msg, where = m.group(1), m.group(2)
        msg = _TYPE_NAME.sub(lambda t: re.sub(r"\w+", lambda w: _YAML_WORDS.get(w[0], w[0]), t[0]), msg)
        base = tp.__origin__ if get_origin(tp) is Annotated else tp
        if get_origin(base) is Literal:
            msg += "; expected one of " + ", ".join(repr(a) for a in get_args(base))
        errors.append((key + where, msg))
        return None


def _build(tp: Any, value: Any, key: str, errors: _Errors) -> Any:
    """Validate `value` as `tp`, appending (dotted key, problem) to `errors` for every problem found."""
    if not _needs_walk(tp):
        return _leaf(tp, value, key, errors)
    if _is_struct(tp):
        return _build_struct(tp, value, key, errors)
    origin, args, found = get_origin(tp), get_args(tp), len(errors)
    try:
        if origin is Annotated:
            for hook in _hooks(tp, "parse"):
                value = hook(value)
            if _needs_walk(tp.__origin__):
                value = _build(tp.__origin__, value, key, errors)
            if len(errors) == found:
                value = _leaf(tp, value, key, errors)  # the constraints (gt, min_length, ...) of this level
            if len(errors) == found:
                for hook in _hooks(tp, "check"):
                    value = hook(value)
            return value
    except ValueError as exc:
        errors.append((key, str(exc)))
        return None
    if origin in (Union, UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _build(options[0], value, key, errors)
    elif origin is list and isinstance(value, list):
        return [_build(args[0], item, f"{key}[{i}]", errors) for i, item in enumerate(value)]
    elif origin is dict and isinstance(value, dict):
        return {
            _leaf(args[0], k, _sub(key, k), errors): _build(args[1], v, _sub(key, k), errors) for k, v in value.items()
        }
    return _leaf(tp, value, key, errors)  # the wrong container: msgspec says what was expected


@functools.cache
def _fields(tp: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    return {f.encode_name: f for f in msgspec.structs.fields(tp)}


def _sub(key: str, name: object) -> str:
    """The dotted key of `name` under `key`; a name that would not read as a key is quoted."""
    if isinstance(name, str) and name.isprintable() and name.strip() == name and name and "." not in name:
        return f"{key}.{name}" if key else name
    return f"{key}[{name!r}]"


def _build_struct(tp: type[msgspec.Struct], value: Any, key: str, errors: _Errors) -> Any:
    if not isinstance(value, dict):
        hint = "; give it settings or remove the empty key" if value is None else ""
        errors.append((key, f"Expected a mapping of settings, got {_kind(value)}{hint}"))
        return None
    fields, found, kwargs = _fields(tp), len(errors), {}
    for name, item in value.items():
        sub = _sub(key, name)
        field = fields.get(name)
        if field is None:
            errors.append((sub, _UNKNOWN_KEY))
        else:
            kwargs[field.name] = _build(field.type, item, sub, errors)
    for name, field in fields.items():
        if field.required and name not in value:
            errors.append((_sub(key, name), "required; add it (see docs/configuration.md)"))
    if len(errors) > found:
        return None
    try:
        return tp(**kwargs)  # __post_init__: the checks that span fields
    except (ValueError, TypeError) as exc:
        errors.append((key, str(exc)))
        return None


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


Duration = Annotated[float, parse(parse_duration)]
"""Seconds; accepts numbers or strings with a unit (ms, s, m, h, d)."""

ByteSize = Annotated[int, parse(parse_size)]
"""Bytes; accepts integers or strings with a unit (B, KB, KiB, MB, MiB, GB, GiB)."""


class Secret:
    """A credential from the config: its repr and str never show the value, so logs and errors cannot."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:  # an empty credential counts as unset, as an absent one
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


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


HostPort = Annotated[str, parse(_host_port)]
"""`host`, `host:port` or `[ipv6]:port`, checked by the parser the Lumberjack client connects with."""


class Backoff(StrictModel, frozen=True):
    """Capped exponential backoff with jitter (logship.backoff): the first delay and the cap."""

    initial: Annotated[Duration, msgspec.Meta(gt=0)] = 1.0
    max: Annotated[Duration, msgspec.Meta(gt=0)] = 60.0

    def __post_init__(self) -> None:
        if self.max < self.initial:
            raise ValueError(f"max ({self.max:g}s) must be at least initial ({self.initial:g}s)")
