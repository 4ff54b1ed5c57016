"""The secured OpenSearch harness itself: HTTPS with the test CA, basic auth, 401 on a wrong password."""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request

import pytest
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import AuthenticationException

from tests.faults.conftest import SecureNode

pytestmark = pytest.mark.integration


def _get(node: SecureNode, path: str, user: str | None, password: str | None) -> int:
    ctx = ssl.create_default_context(cafile=str(node.ca_file))
    req = urllib.request.Request(node.url + path)
    if user is not None and password is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_right_password_is_200_wrong_is_401(secure_opensearch: SecureNode) -> None:
    node = secure_opensearch
    assert node.url.startswith("https://")
    assert _get(node, "/", node.username, node.password) == 200
    assert _get(node, "/", node.username, node.password + "x") == 401
    assert _get(node, "/", None, None) == 401


def test_server_certificate_is_verified_against_the_test_ca(secure_opensearch: SecureNode) -> None:
    # the default trust store does not know the test CA: verification must fail
    req = urllib.request.Request(secure_opensearch.url + "/")
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(req, context=ssl.create_default_context(), timeout=30)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)


async def test_opensearch_py_indexes_over_https(secure_opensearch: SecureNode) -> None:
    node = secure_opensearch
    good = AsyncOpenSearch(
        hosts=[node.url],
        http_auth=(node.username, node.password),
        use_ssl=True,
        verify_certs=True,
        ca_certs=str(node.ca_file),
        timeout=30,
    )
    bad = AsyncOpenSearch(
        hosts=[node.url],
        http_auth=(node.username, "not-the-password"),
        use_ssl=True,
        verify_certs=True,
        ca_certs=str(node.ca_file),
        timeout=30,
    )
    try:
        await good.index(index="harness-check", id="1", body={"ok": True}, refresh=True)
        doc = await good.get(index="harness-check", id="1")
        assert doc["_source"] == {"ok": True}
        with pytest.raises(AuthenticationException):
            await bad.info()
    finally:
        await good.indices.delete(index="harness-check", ignore_unavailable=True)
        await good.close()
        await bad.close()
