"""The OpenSearch client: hosts, HTTPS with a CA, basic auth or AWS SigV4 (credentials never logged).

Basic credentials come from the config (usually `${ENV}`) or from files of a mounted Kubernetes Secret.
SigV4 takes botocore's default credential chain (IRSA web identity, env, instance profile); botocore
is imported only when SigV4 is configured.
"""

from __future__ import annotations

from typing import Any

import orjson
from opensearchpy import AsyncOpenSearch
from opensearchpy.serializer import JSONSerializer

from aggregator.config import OpenSearchConfig
from logship.config import ConfigError


class OrjsonSerializer(JSONSerializer):
    """opensearch-py's serializer with orjson parsing: bulk responses for 5000 items parse fast."""

    def loads(self, s: str | bytes) -> Any:
        return orjson.loads(s)

    def dumps(self, data: Any) -> Any:
        if isinstance(data, str | bytes):
            return data
        return orjson.dumps(data).decode()


class Redactor:
    """Removes secret values from text that may reach a log line or an error message."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, "***")
        return out


def _sigv4_auth(cfg: OpenSearchConfig) -> Any:
    assert cfg.aws_sigv4 is not None
    try:
        import botocore.session
    except ImportError:
        raise ConfigError(
            "aggregator.opensearch.aws_sigv4: needs botocore; install it with `pip install 'logship[aws]'`"
        ) from None
    from opensearchpy import AWSV4SignerAsyncAuth

    credentials = botocore.session.Session().get_credentials()
    if credentials is None:
        raise ConfigError(
            "aggregator.opensearch.aws_sigv4: no AWS credentials found (IRSA, AWS_* env vars, or an "
            "instance profile); give the pod an IAM role or set the AWS environment variables"
        )
    return AWSV4SignerAsyncAuth(credentials, cfg.aws_sigv4.region, cfg.aws_sigv4.service)


def build_client(
    cfg: OpenSearchConfig, *, pool_size: int = 4, hosts: list[str] | None = None
) -> tuple[AsyncOpenSearch, Redactor]:
    """An AsyncOpenSearch for `cfg` (no client-side retries: the sender owns retrying) and a redactor;
    `hosts` narrows it to some nodes (the sink keeps one client per node)."""
    kwargs: dict[str, Any] = {
        "hosts": hosts or cfg.hosts,
        "timeout": cfg.timeout,
        "max_retries": 0,
        "retry_on_timeout": False,
        "serializer": OrjsonSerializer(),
        "maxsize": pool_size,
        "verify_certs": cfg.verify_certs,
    }
    secrets: list[str] = []
    if any(h.lower().startswith("https://") for h in cfg.hosts):
        kwargs["use_ssl"] = True
        if cfg.ca_file:
            kwargs["ca_certs"] = cfg.ca_file
        if not cfg.verify_certs:
            kwargs["ssl_show_warn"] = False
    creds = cfg.credentials()
    if creds is not None:
        kwargs["http_auth"] = creds
        secrets.extend(creds)
    elif cfg.aws_sigv4 is not None:
        kwargs["http_auth"] = _sigv4_auth(cfg)
    return AsyncOpenSearch(**kwargs), Redactor(secrets)
