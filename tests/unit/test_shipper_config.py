"""The `shipper:` section: the documented example validates, defaults, errors that name the key."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from logship.config import ConfigError, load_file, validate_section
from shipper.config import ShipperConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def doc_example(tmp_path: Path) -> Path:
    text = DOC.read_text().split("## Shipper")[1].split("```yaml")[1].split("```")[0]
    p = tmp_path / "shipper.yml"
    p.write_text(text)
    return p


def test_documented_example_validates(tmp_path: Path) -> None:
    path = doc_example(tmp_path)
    cfg = validate_section(ShipperConfig, load_file(path, env={}), "shipper", str(path))
    assert cfg.host_name == socket.gethostname()  # ${NODE_NAME:} unset
    assert [i.type for i in cfg.inputs] == ["containers", "app"]
    assert cfg.inputs[1].multiline is not None and cfg.inputs[1].multiline.timeout == 5.0
    assert cfg.max_event_bytes == 1024 * 1024 and cfg.read_buffer_bytes == 128 * 1024
    assert cfg.output.window_size == 2048 and cfg.output.backoff.max == 60.0
    assert cfg.registry.clean_after == 86400.0 and cfg.http.port == 5066
    named = validate_section(ShipperConfig, load_file(path, env={"NODE_NAME": "ip-10-0-0-1"}), "shipper", "f")
    assert named.host_name == "ip-10-0-0-1"


def test_defaults_per_input_type() -> None:
    cfg = ShipperConfig.from_dict({"inputs": [{"type": "app"}]})
    assert cfg.inputs[0].paths == ["/app/logs/log-*.log"] and cfg.inputs[0].tags == ["app"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"inputs": [{"type": "journald"}]}, "shipper.inputs[0].type"),
        ({"output": {"hosts": ["agg:notaport"]}}, "shipper.output.hosts[0]"),
        ({"output": {"hosts": ["fe80::1:6000"]}}, "shipper.output.hosts[0]: IPv6 address"),
        ({"output": {"backoff": {"initial": 0}}}, "shipper.output.backoff.initial"),
        ({"output": {"backoff": {"initial": "5s", "max": "1s"}}}, "shipper.output.backoff: max (1s)"),
        ({"output": {"windw_size": 3}}, "shipper.output.windw_size: unknown key"),
        ({"output": {"ttl": "-1s"}}, "shipper.output.ttl"),
        ({"output": {"ttl": "200ms"}}, "shipper.output.ttl: ttl 0.2s would reconnect"),
        ({"output": {"workers": 0}}, "shipper.output.workers"),
        (
            {"inputs": [{"type": "app", "multiline": {"start_pattern": "("}}]},
            "shipper.inputs[0].multiline.start_pattern",
        ),
        ({"inputs": [{"type": "app", "timestamp": {"pattern": "^x"}}]}, "named group"),
        ({"inputs": [{"type": "app", "timestamp": {"timezone": "Mars/Base"}}]}, "unknown time zone"),
        ({"scan_interval": "soon"}, "shipper.scan_interval"),
        ({"watch": "fanotify"}, "shipper.watch"),
    ],
)
def test_errors_name_the_key(body: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_section(ShipperConfig, {"shipper": body}, "shipper", "shipper.yml")
    assert key in str(info.value)
    assert str(info.value).startswith("shipper.yml: ")
