"""The configs `deploy/local/README.md` tells an operator to use are the ones in the repo, and are valid."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from logship.demo.pipeline import LOCAL_CONFIGS, logship_command

pytestmark = pytest.mark.e2e

README = LOCAL_CONFIGS / "README.md"
CONFIGS = [
    LOCAL_CONFIGS / "shipper.yml",
    LOCAL_CONFIGS / "aggregator.yml",
    LOCAL_CONFIGS / "node" / "shipper.yml",
    LOCAL_CONFIGS / "node" / "aggregator.yml",
]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(LOCAL_CONFIGS)))
def test_config_is_valid_through_the_cli(path: Path) -> None:
    proc = subprocess.run(
        [*logship_command(), "test", "config", "-c", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "config OK" in proc.stdout


def test_readme_shows_the_node_configs_verbatim() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert (LOCAL_CONFIGS / "node" / "shipper.yml").read_text() in blocks
    assert (LOCAL_CONFIGS / "node" / "aggregator.yml").read_text() in blocks


def test_local_configs_take_paths_and_ports_from_the_environment(tmp_path: Path) -> None:
    from logship.cli import load_section

    env_cfgs = {
        "LOGSHIP_ROOT": str(tmp_path / "node"), "LOGSHIP_DATA": str(tmp_path / "data"), "LOGSHIP_PORT": "6001",
        "SHIPPER_HTTP_PORT": "6002", "AGGREGATOR_HTTP_PORT": "6003", "INDEX_PREFIX": "t-x-",
        "OPENSEARCH_URL": "http://127.0.0.1:9999",
    }  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env_cfgs.items():
            mp.setenv(k, v)
        ship = load_section(str(LOCAL_CONFIGS / "shipper.yml"), "shipper")
        agg = load_section(str(LOCAL_CONFIGS / "aggregator.yml"), "aggregator")
    assert ship.inputs[0].paths == [f"{tmp_path}/node/var/log/containers/*.log"]
    assert ship.inputs[1].paths == [f"{tmp_path}/node/app/logs/log-*.log"]
    assert ship.registry.path == f"{tmp_path}/data/registry.json"
    assert ship.output.hosts == ["127.0.0.1:6001"] and ship.http.port == 6002
    assert agg.listen.port == 6001 and agg.http.port == 6003
    assert agg.opensearch.hosts == ["http://127.0.0.1:9999"]
    assert [r.index for r in agg.routes] == [
        "t-x-logstash-logs-containers-%{+YYYY.MM.dd}",
        "t-x-logstash-logs-app-%{+YYYY.MM.dd}",
        "t-x-logstash-logs-containers-%{+YYYY.MM.dd}",  # a stock Filebeat's container events
        "t-x-logstash-logs-containers-%{+YYYY.MM.dd}",
    ]
    assert agg.template.name == "t-x-logstash-logs"
    assert agg.dead_letter.path == f"{tmp_path}/data/dead-letter.ndjson"
