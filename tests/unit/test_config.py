"""Config loading: env substitution, YAML errors, key-naming validation errors, units."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from logship.config import (
    ByteSize,
    ConfigError,
    Duration,
    Secret,
    StrictModel,
    check,
    load_file,
    parse_duration,
    parse_size,
    read_secret,
    substitute_env,
    validate_section,
)


class Inner(StrictModel):
    port: int = 5044
    timeout: Duration = 30.0


class Sample(StrictModel):
    hosts: list[str]
    inner: Inner = Inner()
    size: ByteSize = 1024


def _even(value: int) -> int:
    if value % 2:
        raise ValueError(f"{value} is odd; give an even number")
    return value


class Rich(StrictModel):
    mode: Literal["fast", "safe"] = "safe"
    waits: dict[str, Duration] = msgspec.field(default_factory=dict)
    inners: list[Inner] = msgspec.field(default_factory=list)
    optional: Inner | None = None
    even: Annotated[int, msgspec.Meta(ge=0), check(_even)] = 0
    token: Secret | None = None
    anything: dict[str, Any] = msgspec.field(default_factory=dict)


def test_env_substitution_with_defaults_and_escape() -> None:
    env = {"HOST": "agg", "EMPTY": ""}
    text = "a: ${HOST}\nb: ${PORT:5044}\nc: ${EMPTY:x}\nd: $${HOST}"
    assert substitute_env(text, env) == "a: agg\nb: 5044\nc: \nd: ${HOST}"


def test_env_substitution_missing_variable_names_it() -> None:
    with pytest.raises(ConfigError, match=r"cfg.yml: environment variable\(s\) NOPE not set"):
        substitute_env("x: ${NOPE}", {}, source="cfg.yml")


def test_load_file_reports_yaml_position(tmp_path: Path) -> None:
    p = tmp_path / "bad.yml"
    p.write_text("shipper:\n  inputs: [\n")
    with pytest.raises(ConfigError, match=r"bad.yml: invalid YAML at line \d+, column \d+"):
        load_file(p)


def test_load_file_rejects_unknown_sections_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yml"
    p.write_text("filebeat: {}\n")
    with pytest.raises(ConfigError, match=r"unknown top-level key.*'filebeat'"):
        load_file(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_file(tmp_path / "missing.yml")


def test_validation_errors_name_the_dotted_key(tmp_path: Path) -> None:
    data = {"shipper": {"hosts": "not-a-list", "inner": {"port": "x", "timout": 3}}}
    with pytest.raises(ConfigError) as exc:
        validate_section(Sample, data, "shipper", "s.yml")
    msg = str(exc.value)
    assert "s.yml: shipper.hosts:" in msg
    assert "s.yml: shipper.inner.port:" in msg
    assert "s.yml: shipper.inner.timout: unknown key" in msg


def test_validation_parses_units() -> None:
    cfg = validate_section(
        Sample, {"aggregator": {"hosts": ["a"], "inner": {"timeout": "250ms"}, "size": "5MiB"}}, "aggregator", "x"
    )
    assert cfg.inner.timeout == pytest.approx(0.25)
    assert cfg.size == 5 * 1024 * 1024


def test_missing_section_is_named() -> None:
    with pytest.raises(ConfigError, match="no 'aggregator:' section"):
        validate_section(Sample, {"shipper": {}}, "aggregator", "x.yml")


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_duration_units(n: int, unit: str) -> None:
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{n}{unit}") == pytest.approx(n * factor)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["B", "KiB", "MiB", "KB", "MB"]))
def test_size_units(n: int, unit: str) -> None:
    factor = {"B": 1, "KiB": 1024, "MiB": 1024**2, "KB": 1000, "MB": 1000**2}[unit]
    assert parse_size(f"{n}{unit}") == n * factor


@pytest.mark.parametrize("bad", ["", "5 parsecs", "-1s", True, [1]])
def test_bad_durations_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_read_secret_prefers_file_and_never_echoes_value(tmp_path: Path) -> None:
    f = tmp_path / "password"
    f.write_text("s3cret\n")
    assert read_secret("inline", str(f), "opensearch.password_file") == "s3cret"
    assert read_secret("inline", None, "opensearch.password") == "inline"
    assert read_secret("", None, "opensearch.password") is None
    with pytest.raises(ConfigError) as exc:
        read_secret("s3cret", str(tmp_path / "nope"), "opensearch.password_file")
    assert "opensearch.password_file" in str(exc.value) and "s3cret" not in str(exc.value)


def test_every_problem_is_reported_with_its_key() -> None:
    """All errors at once, each with its dotted key, through lists, dicts and optional sections."""
    body = {
        "mode": "turbo",
        "waits": {"a": "1s", "b": "soon"},
        "inners": [{"port": 1}, {"port": "x"}, {"prt": 2}],
        "optional": {"timeout": "5 parsecs"},
        "even": 3,
        "anything": {200: "a YAML key that is a number"},
        "waits ": 1,
    }
    with pytest.raises(ConfigError) as exc:
        validate_section(Rich, {"x": body}, "x", "r.yml")
    lines = str(exc.value).splitlines()
    assert len(lines) == 8, lines
    assert all(line.startswith("r.yml: x.") or line.startswith("r.yml: x[") for line in lines)
    text = str(exc.value)
    assert "x.mode: " in text and "expected one of 'fast', 'safe'" in text
    assert "x.waits.b: expected a duration" in text and "x.waits.a" not in text
    assert "x.inners[1].port: Expected `int`, got `str`" in text
    assert "x.inners[2].prt: unknown key" in text
    assert "x.optional.timeout: expected a duration" in text
    assert "x.even: 3 is odd; give an even number" in text
    assert "x.anything[200]: Expected `str`, got `int`" in text
    assert "x['waits ']: unknown key" in text  # a name that would not read as a key is quoted


def test_check_hooks_run_after_the_type_and_constraints() -> None:
    with pytest.raises(ConfigError, match=r"^even: Expected `int` >= 0$"):
        Rich.from_dict({"even": -1})  # the constraint fails first, so the hook never sees -1
    assert Rich.from_dict({"even": "4"}).even == 4  # a string from ${VAR} becomes a number


def test_values_are_converted_and_defaults_kept() -> None:
    cfg = Rich.from_dict(
        {"waits": {"a": "250ms", "b": 2}, "inners": [{"timeout": "1m"}], "anything": {"k": [1, {"n": None}]}}
    )
    assert cfg.waits == {"a": 0.25, "b": 2.0}
    assert cfg.inners == [Inner(port=5044, timeout=60.0)] and cfg.optional is None and cfg.mode == "safe"
    assert cfg.anything == {"k": [1, {"n": None}]}
    assert Rich.from_dict(None) == Rich()  # an empty section is all defaults


def test_a_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^s\.yml: shipper\.inner: Expected a mapping of settings, got null; give"):
        validate_section(Sample, {"shipper": {"hosts": [], "inner": None}}, "shipper", "s.yml")
    with pytest.raises(ConfigError, match=r"^s\.yml: shipper: Expected a mapping of settings, got a list"):
        validate_section(Sample, {"shipper": ["a"]}, "shipper", "s.yml")


def test_missing_required_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^s\.yml: shipper\.hosts: required; add it"):
        validate_section(Sample, {"shipper": {}}, "shipper", "s.yml")


def test_secret_never_shows_its_value() -> None:
    cfg = Rich.from_dict({"token": "hunter22"})
    assert cfg.token is not None and cfg.token.reveal() == "hunter22"
    assert "hunter22" not in repr(cfg) and "hunter22" not in str(cfg.token)
    assert cfg.token == Secret("hunter22") and not Secret("")
    with pytest.raises(ConfigError) as exc:
        Rich.from_dict({"token": 12345678})
    assert "token: Expected a string, got int" in str(exc.value) and "12345678" not in str(exc.value)


def test_loaded_config_is_immutable() -> None:
    cfg = Sample.from_dict({"hosts": ["a"]})
    with pytest.raises(AttributeError):
        cfg.size = 1  # type: ignore[misc]
