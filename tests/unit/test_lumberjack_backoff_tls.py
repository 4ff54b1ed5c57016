"""Backoff bounds and TLS settings errors (certificates generated at run time with trustme)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from logship.backoff import Backoff
from logship.config import ConfigError
from logship.tls import TLSSettings, client_context, server_context


def test_backoff_grows_to_the_cap_with_full_jitter() -> None:
    b = Backoff(0.5, 8.0)
    caps = []
    for _ in range(10):
        caps.append(b.cap)
        assert 0.0 <= b.next() <= caps[-1]
    assert caps[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert caps[-1] == 8.0
    draws = [b.next() for _ in range(200)]
    assert max(draws) <= 8.0
    assert min(draws) < 4.0 < max(draws)  # jitter: spread over the range, not a fixed delay
    b.reset()
    assert b.cap == 0.5


def test_backoff_survives_very_long_outages() -> None:
    b = Backoff(1.0, 60.0, factor=10.0)
    for _ in range(5000):
        assert b.next() <= 60.0


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_backoff_rejects_nonsense(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum, factor)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return {k: str(v) for k, v in paths.items()}


def test_disabled_tls_gives_no_context() -> None:
    assert server_context(TLSSettings()) is None
    assert client_context(TLSSettings()) is None


def test_contexts_from_files(pki: dict[str, str]) -> None:
    srv = server_context(
        TLSSettings(
            enabled=True, cert_file=pki["cert"], key_file=pki["key"], ca_file=pki["ca"], require_client_cert=True
        )
    )
    assert srv is not None and srv.verify_mode == ssl.CERT_REQUIRED
    cli = client_context(TLSSettings(enabled=True, ca_file=pki["ca"]))
    assert cli is not None and cli.verify_mode == ssl.CERT_REQUIRED and cli.check_hostname
    insecure = client_context(TLSSettings(enabled=True, verify=False))
    assert insecure is not None and insecure.verify_mode == ssl.CERT_NONE


def test_missing_files_name_the_config_key(pki: dict[str, str], tmp_path: Path) -> None:
    key = "aggregator.listen.tls"
    with pytest.raises(ConfigError, match=r"aggregator\.listen\.tls\.cert_file: required"):
        server_context(TLSSettings(enabled=True), key=key)
    with pytest.raises(ConfigError, match=r"aggregator\.listen\.tls\.key_file: file /nonexistent/k.pem not found"):
        server_context(TLSSettings(enabled=True, cert_file=pki["cert"], key_file="/nonexistent/k.pem"), key=key)
    with pytest.raises(ConfigError, match=r"tls\.ca_file: required when tls\.require_client_cert"):
        server_context(TLSSettings(enabled=True, cert_file=pki["cert"], key_file=pki["key"], require_client_cert=True))
    with pytest.raises(ConfigError, match=r"tls\.ca_file: file .* not found"):
        client_context(TLSSettings(enabled=True, ca_file=str(tmp_path / "nope.pem")))


def test_unusable_pem_names_the_key(pki: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"tls\.ca_file: cannot load"):
        client_context(TLSSettings(enabled=True, ca_file=str(junk)))
    with pytest.raises(ConfigError, match=r"tls\.cert_file/tls\.key_file: cannot load"):
        server_context(TLSSettings(enabled=True, cert_file=pki["cert"], key_file=str(junk)))


def test_unknown_tls_keys_are_rejected() -> None:
    with pytest.raises(ConfigError, match="verfiy: unknown key"):
        TLSSettings.from_dict({"enabled": True, "verfiy": False})
