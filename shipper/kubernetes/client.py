"""The API calls of the watch: lightkube's config and authentication, raw JSON objects.

lightkube loads the in-cluster config (ServiceAccount token, re-read when the kubelet rotates it, and
CA) or a kubeconfig, and gives an HTTP client set up with them. The objects stay plain JSON (no model
classes): only a few fields are read, and the cache keeps what it needs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import orjson
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig

from shipper.kubernetes.watch import ApiError, Gone, Obj

_PATHS = {"pods": "/api/v1/pods", "namespaces": "/api/v1/namespaces", "nodes": "/api/v1/nodes"}
LIST_CHUNK = 500


SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def load_config(kubeconfig: str | None, service_account: str = SERVICE_ACCOUNT) -> Any:
    """The kubeconfig named; else in-cluster (the ServiceAccount's token, re-read as the kubelet rotates it,
    and CA) when KUBERNETES_SERVICE_HOST is set; else $KUBECONFIG or ~/.kube/config."""
    if kubeconfig:
        return KubeConfig.from_file(kubeconfig).get()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return KubeConfig.from_service_account(service_account).get()
    return KubeConfig.from_env().get()


class LightkubeApi:
    def __init__(self, http: httpx.AsyncClient, node_name: str) -> None:
        self._http = http
        self.node_name = node_name

    @classmethod
    def from_config(
        cls, kubeconfig: str | None, node_name: str, timeout: float = 10.0, service_account: str = SERVICE_ACCOUNT
    ) -> LightkubeApi:
        params = client_adapter.ConnectionParams(timeout=httpx.Timeout(timeout), trust_env=False)
        return cls(client_adapter.AsyncClient(load_config(kubeconfig, service_account), params), node_name)

    def _params(self, kind: str) -> dict[str, str]:
        if kind == "pods":
            return {"fieldSelector": f"spec.nodeName={self.node_name}"}
        if kind == "nodes":
            return {"fieldSelector": f"metadata.name={self.node_name}"}
        return {}

    async def list(self, kind: str) -> tuple[list[Obj], str]:
        items: list[Obj] = []
        params = {**self._params(kind), "limit": str(LIST_CHUNK)}
        while True:
            try:
                resp = await self._http.get(_PATHS[kind], params=params)
            except httpx.HTTPError as exc:
                raise ApiError(0, f"GET {_PATHS[kind]}: {exc or type(exc).__name__}") from None
            body = _check(resp, kind, "list")
            items.extend(body.get("items") or [])
            meta = body.get("metadata") or {}
            cont = meta.get("continue")
            if not cont:
                return items, str(meta.get("resourceVersion") or "")
            params["continue"] = cont

    async def watch(self, kind: str, resource_version: str, server_timeout: float) -> AsyncIterator[tuple[str, Obj]]:
        params = {
            **self._params(kind),
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(int(server_timeout)),
        }
        request = self._http.build_request(
            "GET", _PATHS[kind], params=params, timeout=httpx.Timeout(10.0, read=server_timeout + 30.0)
        )
        try:
            resp = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"watch {_PATHS[kind]}: {exc or type(exc).__name__}") from None
        try:
            if resp.status_code != 200:
                await resp.aread()
                _check(resp, kind, "watch")
            async for line in resp.aiter_lines():
                if not line:
                    continue
                event = orjson.loads(line)
                yield event.get("type", ""), event.get("object") or {}
        except httpx.HTTPError as exc:
            raise ApiError(0, f"watch {_PATHS[kind]}: {exc or type(exc).__name__}") from None
        finally:
            await resp.aclose()

    async def close(self) -> None:
        await self._http.aclose()


def _check(resp: httpx.Response, kind: str, verb: str) -> dict[str, Any]:
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        body = {}
    if resp.status_code == 410:
        raise Gone(str(body.get("message") or "resourceVersion too old"))
    if resp.status_code != 200:
        message = body.get("message") if isinstance(body, dict) else None
        raise ApiError(resp.status_code, f"{verb} {kind}: {message or resp.reason_phrase}")
    if not isinstance(body, dict):
        raise ApiError(resp.status_code, f"{verb} {kind}: not a JSON object")
    return body
