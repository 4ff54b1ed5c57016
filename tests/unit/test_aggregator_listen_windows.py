"""aggregator.listen.max_windows_in_flight: parsed, validated with the key named, passed to the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.app import Aggregator
from aggregator.config import AggregatorConfig
from logship.config import ConfigError, load_file, validate_section


def load(tmp_path: Path, text: str) -> AggregatorConfig:
    path = tmp_path / "agg.yml"
    path.write_text(text)
    return validate_section(AggregatorConfig, load_file(path, {}), "aggregator", str(path))


def test_default_and_value_reach_the_lumberjack_server(tmp_path: Path) -> None:
    assert AggregatorConfig().listen.max_windows_in_flight == 4
    cfg = load(tmp_path, "aggregator:\n  listen: {max_windows_in_flight: 7}\n")
    assert Aggregator(cfg, blackhole=True).server.limits.max_windows_in_flight == 7


def test_zero_is_rejected_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"aggregator\.listen\.max_windows_in_flight"):
        load(tmp_path, "aggregator:\n  listen: {max_windows_in_flight: 0}\n")
