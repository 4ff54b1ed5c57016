"""TLS end to end, with certificates made by the test.

* shipper -> aggregator over TLS, and over mTLS; a client with no certificate, or with one from
  another CA, is refused (raw TLS clients and a real shipper), and nothing it sends is indexed;
* aggregator -> OpenSearch with the security plugin over HTTPS with basic auth from files: a wrong
  password is reported clearly and retried while the shipper holds its data; with the password file
  fixed and the aggregator restarted, everything arrives exactly once; no credential in any log.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from logship.demo.pipeline import Service, free_port
from logship.lumberjack.codec import encode_window
from tests.faults.conftest import SecureNode
from tests.faults.pki import CA
from tests.faults.rig import OUTAGE_S, Rig, wait_for

pytestmark = pytest.mark.slow


class Pki:
    def __init__(self, d: Path) -> None:
        d.mkdir(parents=True, exist_ok=True)
        self.dir = d
        ca = CA("logship-tls")
        self.ca = ca.write(d / "ca.pem")
        self.server = ca.issue("aggregator", hosts=("127.0.0.1", "localhost"), client=False).write(d, "server")
        self.client = ca.issue("shipper-node-1", server=False).write(d, "client")
        other = CA("someone-else")
        self.other_ca = other.write(d / "other-ca.pem")
        self.foreign = other.issue("intruder", server=False).write(d, "foreign")


def _listen_tls(pki: Pki, mtls: bool) -> dict[str, Any]:
    tls: dict[str, Any] = {"enabled": True, "cert_file": str(pki.server[0]), "key_file": str(pki.server[1])}
    if mtls:
        tls |= {"ca_file": str(pki.ca), "require_client_cert": True}
    return {"tls": tls}


def _output_tls(pki: Pki, cert: tuple[Path, Path] | None) -> dict[str, Any]:
    tls: dict[str, Any] = {"enabled": True, "ca_file": str(pki.ca)}
    if cert is not None:
        tls |= {"cert_file": str(cert[0]), "key_file": str(cert[1])}
    return {"tls": tls}


@pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
def test_shipper_to_aggregator_over_tls(rig: Rig, tmp_path: Path, mtls: bool) -> None:
    pki = Pki(tmp_path / "pki")
    rig.start_aggregator(listen=_listen_tls(pki, mtls))
    rig.start_shipper(output=_output_tls(pki, pki.client if mtls else None))
    rig.generate(duration=4, seed=71)
    manifest = rig.manifest()
    report = rig.wait_all(manifest)
    assert report.found == manifest["events"]
    assert "(TLS)" in rig.log("aggregator")


def _raw_tls_attempt(port: int, ca: Path, cert: tuple[Path, Path] | None) -> str:
    """Handshake and send a window; returns how it ended: 'acked' or the error seen."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
        ):
            # with TLS 1.3 the server's verdict on our certificate arrives after our handshake ends
            s.sendall(encode_window([b'{"message":"intruder-raw"}']))
            data = s.recv(6)
            return "acked" if data[:2] == b"2A" else f"closed ({data!r})"
    except (ssl.SSLError, OSError) as exc:
        return f"refused: {exc}"


def test_mtls_refuses_clients_without_a_certificate_or_from_another_ca(rig: Rig, tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    rig.start_aggregator(listen=_listen_tls(pki, mtls=True))
    # a good shipper keeps working throughout
    rig.start_shipper(output=_output_tls(pki, pki.client))

    # refused: the handshake fails, or (TLS 1.3) the server's alert closes the connection unacked
    assert _raw_tls_attempt(rig.lj_port, pki.ca, None) != "acked"
    assert _raw_tls_attempt(rig.lj_port, pki.ca, pki.foreign) != "acked"

    # a real shipper with a certificate from another CA: refused, says so, sends nothing
    intruder_root = tmp_path / "intruder"
    (intruder_root / "logs").mkdir(parents=True)
    (intruder_root / "logs" / "log-intruder.log").write_text("".join(f"intruder-line-{i}\n" for i in range(50)))
    intruder_cfg = tmp_path / "intruder.yml"
    intruder_http = free_port()
    intruder_cfg.write_text(
        yaml.safe_dump(
            {
                "shipper": {
                    "name": "intruder",
                    "inputs": [{"type": "app", "paths": [str(intruder_root / "logs" / "*.log")]}],
                    "registry": {"path": str(intruder_root / "registry.json")},
                    "output": {
                        "hosts": [f"127.0.0.1:{rig.lj_port}"],
                        "backoff": {"initial": "200ms", "max": "1s"},
                        **_output_tls(pki, pki.foreign),
                    },
                    "http": {"host": "127.0.0.1", "port": intruder_http},
                }
            }
        )
    )
    intruder = Service("shipper", intruder_cfg, {}, intruder_http, rig.logs / "intruder.log")
    intruder.start()
    try:
        rig.generate(duration=4, seed=72)
        manifest = rig.manifest()
        report = rig.wait_all(manifest)  # exactly the good shipper's lines: none of the intruder's
        assert report.found == manifest["events"] and report.unexpected == 0
        intruder.check_alive()  # refused, but it keeps retrying rather than crashing
        assert intruder.metrics().get("logship_shipper_events_acked_total", 0) == 0
    finally:
        intruder.stop(timeout=10)
    # the raw client can tell an ack from a refusal: with the right certificate it is acked (done last,
    # its event is not one of the generator's)
    assert _raw_tls_attempt(rig.lj_port, pki.ca, pki.client) == "acked"
    ilog = (rig.logs / "intruder.log").read_text()
    # the refused shipper says what to check; the aggregator cannot say anything (its listener does the
    # handshake, and asyncio/uvloop report failed handshakes only in debug mode): see docs/guarantees.md
    assert "resending" in ilog and "refused client certificate" in ilog, ilog[-2000:]


def _write_credentials(d: Path, user: str, password: str) -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    (d / "username").write_text(user + "\n")
    (d / "password").write_text(password + "\n")
    (d / "password").chmod(0o600)
    return d / "username", d / "password"


def test_aggregator_to_secured_opensearch_wrong_then_right_password(
    tmp_path: Path, secure_opensearch: SecureNode, index_prefix: str
) -> None:
    node = secure_opensearch
    rig = Rig(tmp_path, node.url, index_prefix)
    rig.use_credentials(node.username, node.password, node.ca_file)
    wrong = "Wr0ng-" + node.password[::-1]
    user_file, password_file = _write_credentials(tmp_path / "secret", node.username, wrong)
    opensearch = {
        "opensearch": {
            "hosts": [node.url],
            "username_file": str(user_file),
            "password_file": str(password_file),
            "ca_file": str(node.ca_file),
        }
    }
    try:
        aggregator = rig.start_aggregator(ready=False, **opensearch)
        rig.start_shipper()
        rig.generate(duration=4, seed=73)

        # wrong password: a clear error naming what to fix, retried, and the aggregator stays up
        wait_for(lambda: "401" in rig.log("aggregator"), 60, "the aggregator to report the 401")
        time.sleep(min(OUTAGE_S, 5.0))
        aggregator.check_alive()
        log = rig.log("aggregator")
        assert "refused our credentials" in log and "retrying in" in log, log[-2000:]
        assert "aggregator.opensearch.username/password" in log  # it names the settings to check
        assert rig.count() <= 0

        # fix the mounted Secret and restart (the password is read at start)
        _write_credentials(tmp_path / "secret", node.username, node.password)
        aggregator.stop(timeout=10)
        aggregator.start()
        aggregator.wait_ready(60)
        manifest = rig.manifest()
        report = rig.wait_all(manifest)
        assert report.found == manifest["events"]
    finally:
        rig.close()
        try:
            rig.request(f"/{index_prefix}*", "DELETE")
            rig.request(f"/_index_template/{index_prefix}logstash-logs", "DELETE")
        except OSError:
            pass

    # no credential anywhere in what logship wrote
    for f in [*rig.logs.iterdir(), *rig.data.iterdir()]:
        text = f.read_bytes()
        for secret in (node.password, wrong):
            assert secret.encode() not in text, f"{f.name} holds a password"
