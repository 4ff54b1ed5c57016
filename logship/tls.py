"""TLS settings shared by the lumberjack server (aggregator) and client (shipper).

`server_context` / `client_context` build `ssl.SSLContext`s from the `tls:` config section and turn
every file problem into a ConfigError that names the config key, so an operator knows what to fix.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from logship.config import ConfigError, StrictModel


class TLSSettings(StrictModel, frozen=True):
    enabled: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    require_client_cert: bool = False  # server side: mTLS
    server_name: str | None = None  # client side: expected name when it differs from the host
    verify: bool = True  # client side: False disables verification (testing only)


def _readable(path: str | None, key: str, what: str) -> str:
    if not path:
        raise ConfigError(f"{key}: required when tls.enabled is true ({what})")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{key}: file {path} not found; mount the {what} there or fix the path")
    try:
        with p.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
    return path


def _load_chain(ctx: ssl.SSLContext, s: TLSSettings, key: str) -> None:
    cert = _readable(s.cert_file, f"{key}.cert_file", "certificate (PEM)")
    private = _readable(s.key_file, f"{key}.key_file", "private key (PEM)")
    try:
        ctx.load_cert_chain(cert, private)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{key}.cert_file/{key}.key_file: cannot load {cert} with {private}: {exc.reason or exc}; "
            "check that both are PEM and that the key matches the certificate"
        ) from None


def _load_ca(ctx: ssl.SSLContext, s: TLSSettings, key: str) -> None:
    ca = _readable(s.ca_file, f"{key}.ca_file", "CA certificate (PEM)")
    try:
        ctx.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise ConfigError(f"{key}.ca_file: cannot load {ca}: {exc.reason or exc}; expected PEM") from None


def server_context(s: TLSSettings, key: str = "tls") -> ssl.SSLContext | None:
    """The listener's context, or None when TLS is off. `key` is the dotted config key for errors."""
    if not s.enabled:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, s, key)
    if s.require_client_cert:
        if not s.ca_file:
            raise ConfigError(
                f"{key}.ca_file: required when {key}.require_client_cert is true (the CA that signs clients)"
            )
        _load_ca(ctx, s, key)
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif s.ca_file:
        # A CA without require_client_cert: verify a certificate if the client offers one.
        _load_ca(ctx, s, key)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_context(s: TLSSettings, key: str = "tls") -> ssl.SSLContext | None:
    """The connector's context, or None when TLS is off. Pass `s.server_name` as server_hostname."""
    if not s.enabled:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if s.ca_file:
        _load_ca(ctx, s, key)
    if not s.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if s.cert_file or s.key_file:
        _load_chain(ctx, s, key)
    return ctx
