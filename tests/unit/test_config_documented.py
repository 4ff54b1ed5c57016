"""Every setting the code reads is settable and documented: each key of the config models appears in
docs/configuration.md, and the documented examples validate to the models' defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from aggregator.config import AggregatorConfig
from logship.config import validate_section
from logship.tls import TLSSettings
from shipper.config import ShipperConfig

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def model_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        ann: Any = field.annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel) and candidate is not TLSSettings:
                keys.extend(model_keys(candidate, f"{prefix}{name}."))
    return keys


def doc_block(title: str) -> str:
    return DOC.split(f"## {title}")[1].split("```yaml")[1].split("```")[0]


@pytest.mark.parametrize(("model", "title"), [(ShipperConfig, "Shipper"), (AggregatorConfig, "Aggregator")])
def test_every_key_is_documented(model: type[BaseModel], title: str) -> None:
    block = doc_block(title)
    missing = [k for k in model_keys(model) if not re.search(rf"(?<![\w.]){re.escape(k.rsplit('.', 1)[-1])}:", block)]
    assert missing == [], f"keys missing from docs/configuration.md ## {title}: {missing}"


def test_every_tls_key_is_documented() -> None:
    block = doc_block("TLS (both sides)")
    assert [k for k in TLSSettings.model_fields if f"{k}:" not in block] == []


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
