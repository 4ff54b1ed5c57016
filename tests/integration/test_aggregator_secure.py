"""The aggregator against a real OpenSearch with the security plugin: HTTPS verified with a CA file,
basic auth from a mounted-Secret-style file, and credentials that never reach output or errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import AsyncOpenSearch

from aggregator.app import Aggregator, _test_output
from aggregator.config import AggregatorConfig
from aggregator.retry import Action, after_failure
from aggregator.sink import SinkError
from tests.faults.conftest import SecureNode, secure_opensearch  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFIX = "t-agg-secure-"


def config(node: SecureNode, tmp_path: Path, password: str) -> AggregatorConfig:
    (tmp_path / "username").write_text(node.username + "\n")
    (tmp_path / "password").write_text(password + "\n")
    return AggregatorConfig.from_dict(
        {
            "listen": {"host": "127.0.0.1", "port": 0},
            "routes": [{"tag": "app", "index": f"{PREFIX}app-%{{+YYYY.MM.dd}}"}],
            "default_index": f"{PREFIX}other-%{{+YYYY.MM.dd}}",
            "opensearch": {
                "hosts": [node.url],
                "username_file": str(tmp_path / "username"),
                "password_file": str(tmp_path / "password"),
                "ca_file": str(node.ca_file),
                "timeout": "10s",
            },
            "bulk": {"backoff": {"initial": "100ms", "max": "500ms"}},
            "template": {"install": False},
            "dead_letter": {"path": str(tmp_path / "dlq.ndjson")},
            "http": {"host": "127.0.0.1", "port": 0},
        }
    )


async def test_https_with_ca_and_basic_auth_from_files(
    secure_opensearch: SecureNode,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = secure_opensearch
    admin = AsyncOpenSearch(
        hosts=[node.url], http_auth=(node.username, node.password), use_ssl=True, ca_certs=str(node.ca_file)
    )
    agg = Aggregator(config(node, tmp_path, node.password))
    try:
        agg.pipeline.start()
        events = [
            {"@timestamp": "2026-04-01T00:00:00Z", "tags": ["app"], "message": f"m{i}", "@metadata": {"_id": f"s{i}"}}
            for i in range(20)
        ]
        await agg.pipeline.submit(events)
        await admin.indices.refresh(index=f"{PREFIX}*")
        assert (await admin.count(index=f"{PREFIX}app-2026.04.01"))["count"] == 20
        assert await _test_output(agg.cfg) == 0
        out = capsys.readouterr()
        assert "connection... OK: opensearch 2.19" in out.out
        assert node.password not in out.out + out.err
    finally:
        await agg.pipeline.close(5)
        await agg.sink.close()
        await admin.indices.delete(index=f"{PREFIX}*", ignore=[404])
        await admin.close()


async def test_wrong_password_is_reported_without_the_password(
    secure_opensearch: SecureNode,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = secure_opensearch
    wrong = node.password + "-wrong"
    cfg = config(node, tmp_path, wrong)
    assert await _test_output(cfg) == 1
    out = capsys.readouterr()
    assert "answered 401" in out.err and "aggregator.opensearch.username/password" in out.err
    assert wrong not in out.out + out.err and node.password not in out.out + out.err

    agg = Aggregator(cfg)
    try:
        with pytest.raises(SinkError) as err:
            await agg.sink.bulk(b'{"create":{"_index":"t-agg-secure-x","_id":"1"}}\n{"a":1}\n', 1)
        # kept and retried: fix the Secret, no loss
        assert err.value.status == 401 and after_failure(err.value.status, 1) is Action.RETRY
        assert wrong not in str(err.value)
    finally:
        await agg.sink.close()
        if agg.client is not None:
            await agg.client.close()
