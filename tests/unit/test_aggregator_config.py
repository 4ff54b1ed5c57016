"""The aggregator's config section, credentials handling and dead-letter file."""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson
import pytest

from aggregator.accumulator import BulkItem, Ticket
from aggregator.auth import Redactor, build_client
from aggregator.config import AggregatorConfig
from aggregator.deadletter import DeadLetterFile
from logship.config import ConfigError, load_file, validate_section

DOC_EXAMPLE = """
aggregator:
  listen:
    host: 0.0.0.0
    port: 5044
    tls: {enabled: false}
    max_frame_bytes: 16MiB
    max_window_size: 16384
    max_decompressed_bytes: 64MiB
    idle_timeout: 5m
    keepalive_interval: 2s
  routes:
    - {tag: containers, index: "logstash-logs-containers-%{+YYYY.MM.dd}"}
    - {tag: app, index: "logstash-logs-app-%{+YYYY.MM.dd}"}
    - match: {input.type: container}
      index: "logstash-logs-containers-%{+YYYY.MM.dd}"
    - match: {input.type: [filestream, log], log.file.path: ["*/var/log/containers/*", "*/var/log/pods/*"]}
      index: "logstash-logs-containers-%{+YYYY.MM.dd}"
  default_index: "logstash-logs-unrouted-%{+YYYY.MM.dd}"
  opensearch:
    hosts: ["https://opensearch.example:9200"]
    sniff: false
    sniff_interval: 5m
    username: ${OPENSEARCH_USERNAME:}
    password: ${OPENSEARCH_PASSWORD:}
    username_file: null
    password_file: null
    ca_file: null
    verify_certs: true
    aws_sigv4: null
    timeout: 60s
  bulk:
    max_bytes: 5MiB
    max_docs: 5000
    max_delay: 1s
    concurrency: 2
    gzip: false
    backoff: {initial: 500ms, max: 30s}
  queue_max_events: 50000
  template:
    install: true
    name: logstash-logs
    shards: 1
    replicas: 1
  ism_delete_after: null
  dead_letter:
    path: /var/lib/logship/dead-letter.ndjson
    max_bytes: 100MiB
    keep: 5
  http: {host: 0.0.0.0, port: 9600}
  shutdown_timeout: 30s
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> AggregatorConfig:
    path = tmp_path / "agg.yml"
    path.write_text(text)
    return validate_section(AggregatorConfig, load_file(path, env or {}), "aggregator", str(path))


def test_documented_example_is_valid_and_matches_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, DOC_EXAMPLE, {"OPENSEARCH_PASSWORD": "s3cret-value"})
    assert cfg.bulk.max_bytes == 5 * 1024 * 1024 and cfg.bulk.backoff.initial == 0.5
    assert cfg.listen.idle_timeout == 300 and cfg.dead_letter.max_bytes == 100 * 1024 * 1024
    assert cfg.opensearch.credentials() == ("", "s3cret-value")
    assert "s3cret-value" not in repr(cfg) and "s3cret-value" not in str(cfg.opensearch.password)
    assert "s3cret-value" not in str(msgspec.structs.asdict(cfg.opensearch))
    defaults = AggregatorConfig()
    assert defaults.routes == cfg.routes and defaults.bulk == cfg.bulk and defaults.template == cfg.template


def test_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "aggregator:\n  bulk: {concurency: 2}\n  routes: [{tag: a, index: 'x-%{+YYYY.QQ}'}]\n")
    text = str(err.value)
    assert "aggregator.bulk.concurency: unknown key" in text
    assert "aggregator.routes[0].index" in text and "'QQ'" in text


def test_opensearch_hosts_one_url_or_a_list_and_clear_errors(tmp_path: Path) -> None:
    one = load(tmp_path, "aggregator:\n  opensearch: {hosts: 'http://n1:9200/'}\n")
    assert one.opensearch.hosts == ["http://n1:9200"] and one.opensearch.sniff is False
    three = load(tmp_path, "aggregator:\n  opensearch: {hosts: [http://n1:9200, http://n2:9200, http://n3:9200]}\n")
    assert len(three.opensearch.hosts) == 3
    for hosts, says in (
        ("[n1:9200]", "is not a node URL"),
        ("[http://n1:9200, http://n1:9200/]", "listed twice"),
        ("[http://n1:9200, https://n2:9200]", "mixes http:// and https://"),
        ("[]", "length >= 1"),
    ):
        with pytest.raises(ConfigError) as err:
            load(tmp_path, f"aggregator:\n  opensearch: {{hosts: {hosts}}}\n")
        assert "aggregator.opensearch.hosts" in str(err.value) and says in str(err.value), str(err.value)
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "aggregator:\n  opensearch: {sniff_interval: 0s}\n")
    assert "aggregator.opensearch.sniff_interval" in str(err.value)


def test_sniffed_node_addresses() -> None:
    from aggregator.sink import sniffed_hosts

    info = {
        "nodes": {
            "a": {"http": {"publish_address": "10.0.0.2:9200"}},
            "b": {"http": {"publish_address": "node-b.example/10.0.0.3:9200"}},
            "c": {},
        }
    }
    assert sniffed_hosts(info, "https") == ["https://10.0.0.2:9200", "https://10.0.0.3:9200"]
    assert sniffed_hosts(None, "http") == [] and sniffed_hosts({"nodes": None}, "http") == []


def test_credentials_from_secret_files_and_never_in_errors(tmp_path: Path) -> None:
    (tmp_path / "username").write_text("admin\n")
    (tmp_path / "password").write_text("from-file-pw\n")
    cfg = load(
        tmp_path,
        f"aggregator:\n  opensearch:\n    username_file: {tmp_path}/username\n    password_file: {tmp_path}/password\n",
    )
    assert cfg.opensearch.credentials() == ("admin", "from-file-pw")
    missing = load(tmp_path, "aggregator:\n  opensearch:\n    password_file: /nonexistent/pw\n")
    with pytest.raises(ConfigError, match=r"aggregator.opensearch.password_file: cannot read secret file"):
        missing.opensearch.credentials()
    with pytest.raises(ConfigError, match="not in the host URL"):
        load(tmp_path, "aggregator:\n  opensearch: {hosts: ['https://u:pw@h:9200']}\n")


def test_sigv4_needs_botocore_or_says_how(tmp_path: Path) -> None:
    cfg = load(tmp_path, "aggregator:\n  opensearch: {aws_sigv4: {region: eu-west-1, service: aoss}}\n")
    try:
        import botocore  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"aws_sigv4: needs botocore.*logship\[aws\]"):
            build_client(cfg.opensearch)
    with pytest.raises(ConfigError, match="service"):
        load(tmp_path, "aggregator:\n  opensearch: {aws_sigv4: {region: eu-west-1, service: s3}}\n")
    with pytest.raises(ConfigError, match="exclusive"):
        load(tmp_path, "aggregator:\n  opensearch: {username: a, aws_sigv4: {region: eu-west-1}}\n")


def test_redactor_hides_secrets() -> None:
    r = Redactor(["admin", "hunter22"])
    assert r("auth admin:hunter22 failed") == "auth ***:*** failed"


def _item(doc: bytes) -> BulkItem:
    return BulkItem.of(b"{}\n", doc + b"\n", "idx-1", Ticket(1))


def test_dead_letter_records_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "dlq" / "dead.ndjson"
    dlq = DeadLetterFile(path, max_bytes=600, keep=2)
    err = {"type": "mapper_parsing_exception", "reason": "failed to parse [n]"}
    for i in range(12):
        dlq.write([(_item(orjson.dumps({"n": f"bad-{i}"})).source, "idx-1", 400, err)])
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["dead.ndjson", "dead.ndjson.1", "dead.ndjson.2"]
    assert all(p.stat().st_size <= 600 for p in path.parent.iterdir())
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    last = records[-1]
    assert last["event"] == {"n": "bad-11"} and last["index"] == "idx-1" and last["status"] == 400
    assert last["error"] == err and last["@timestamp"].endswith("Z")
    older = [orjson.loads(x)["event"]["n"] for x in (path.parent / "dead.ndjson.1").read_bytes().splitlines()]
    newest_first = int(older[-1].split("-")[1])
    assert newest_first < int(records[0]["event"]["n"].split("-")[1])
    dlq.write([(b"not json\n", "idx-1", 400, None)])
    assert orjson.loads(path.read_bytes().splitlines()[-1])["event"] == "not json"
