"""Config loading: env substitution, YAML errors, key-naming validation errors, units."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logship.config import (
    ByteSize,
    ConfigError,
    Duration,
    StrictModel,
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
