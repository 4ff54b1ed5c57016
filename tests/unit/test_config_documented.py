"""Every setting the code reads is settable and documented: each key of the config models appears in
docs/configuration.md, and the documented examples validate to the models' defaults."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from aggregator.config import AggregatorConfig
from logship.config import validate_section
from logship.tls import TLSSettings
from shipper.config import ShipperConfig

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def struct_types(t: msgspec.inspect.Type) -> list[type[msgspec.Struct]]:
    """The struct types a field can hold: itself, inside `X | None`, a list or a dict, behind constraints."""
    if isinstance(t, msgspec.inspect.StructType):
        return [t.cls]
    if isinstance(t, msgspec.inspect.Metadata):
        return struct_types(t.type)
    if isinstance(t, msgspec.inspect.UnionType):
        return [s for member in t.types for s in struct_types(member)]
    if isinstance(t, msgspec.inspect.ListType | msgspec.inspect.DictType):
        return struct_types(t.item_type if isinstance(t, msgspec.inspect.ListType) else t.value_type)
    return []


def model_keys(model: type[msgspec.Struct], prefix: str = "") -> list[str]:
    keys = []
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        keys.append(prefix + field.encode_name)
        for candidate in struct_types(field.type):
            if candidate is not TLSSettings:
                keys.extend(model_keys(candidate, f"{prefix}{field.encode_name}."))
    return keys


def test_model_keys_reach_nested_structs() -> None:
    """The walk itself: a key only reachable through a list, an optional or a nested section is found."""
    keys = model_keys(ShipperConfig)
    assert {"inputs.multiline.start_pattern", "inputs.timestamp.timezone", "output.backoff.max"} <= set(keys)
    assert {"kubernetes.backoff.initial", "output.tls"} <= set(keys) and "output.tls.verify" not in keys
    assert "routes.match" in model_keys(AggregatorConfig) and "opensearch.aws_sigv4.region" in model_keys(
        AggregatorConfig
    )


def doc_block(title: str) -> str:
    return DOC.split(f"## {title}")[1].split("```yaml")[1].split("```")[0]


@pytest.mark.parametrize(("model", "title"), [(ShipperConfig, "Shipper"), (AggregatorConfig, "Aggregator")])
def test_every_key_is_documented(model: type[msgspec.Struct], title: str) -> None:
    block = doc_block(title)
    missing = [k for k in model_keys(model) if not re.search(rf"(?<![\w.]){re.escape(k.rsplit('.', 1)[-1])}:", block)]
    assert missing == [], f"keys missing from docs/configuration.md ## {title}: {missing}"


def test_every_tls_key_is_documented() -> None:
    block = doc_block("TLS (both sides)")
    keys = [f.encode_name for f in msgspec.structs.fields(TLSSettings)]
    assert keys and [k for k in keys if f"{k}:" not in block] == []


def test_server_limits_are_settable() -> None:
    cfg = validate_section(
        AggregatorConfig,
        {"aggregator": {"listen": {"max_window_bytes": "1MiB", "max_connections": 3}}},
        "aggregator",
        "a.yml",
    )
    assert cfg.listen.max_window_bytes == 1024 * 1024 and cfg.listen.max_connections == 3


def test_output_settings_reach_the_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipper import event
    from shipper.app import Shipper

    monkeypatch.setattr(event, "_agent", None)  # the shipper sets the process's agent identity; undo it after

    cfg = validate_section(
        ShipperConfig,
        {
            "shipper": {
                "registry": {"path": str(tmp_path / "registry.json")},
                "output": {
                    "hosts": ["[::1]:6000"],
                    "connect_timeout": "3s",
                    "timeout": "7s",
                    "backoff": {"initial": "2s", "max": "9s"},
                },
            }
        },
        "shipper",
        "s.yml",
    )
    client = Shipper(cfg).client
    assert client is not None
    assert client.hosts == [("::1", 6000)] and client.connect_timeout == 3.0 and client.timeout == 7.0
    assert (tmp_path / "agent.json").is_file()  # agent.id is kept beside the registry
