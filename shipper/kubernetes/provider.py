"""What the shipper consults: when a container log file is opened, and when its events are built.

    opening = provider.open_file(path, source, now)   # None: skip for now (excluded, or waiting for its pod)
    harvester.metadata = opening.metadata             # generation + fields(), asked before each batch

Never blocks, never loses: the watch runs in its own tasks; a file whose pod is unknown waits at most
`wait_for_pod`, then is read with file-name metadata and `kubernetes.metadata: partial`, and its later
events are enriched as soon as the watch delivers the pod.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from logship.backoff import Backoff
from shipper.event import kubernetes_from_path
from shipper.harvester import Source
from shipper.kubernetes.cache import MetadataCache
from shipper.kubernetes.config import KubernetesConfig
from shipper.kubernetes.watch import ListWatch, ListWatchApi, Obj

log = logging.getLogger("logship.shipper.kubernetes")

KINDS = ("pods", "namespaces", "nodes")
PARTIAL: dict[str, Any] = {"kubernetes": {"metadata": "partial"}}
_POD_UID = re.compile(r"^[^_]+_[^_]+_(?P<uid>[0-9a-f-]{36})$")
_RBAC_HINT = (
    "; the shipper's ClusterRole needs get, list and watch on pods, namespaces and nodes "
    "(helm value shipper.kubernetes.enabled=true grants them)"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Opening:
    source: Source
    metadata: FileMetadata | None


class FileMetadata:
    """The metadata of one container log file; `fields()` is asked again whenever `generation` changed."""

    __slots__ = ("_cache", "cid", "container", "namespace", "pod", "uid")

    def __init__(self, cache: MetadataCache, kube: dict[str, str], cid: str | None, uid: str | None) -> None:
        self._cache = cache
        self.namespace = kube["namespace"]
        self.pod = kube["pod"]
        self.container = kube["container"]
        self.cid = cid
        self.uid = uid

    @property
    def generation(self) -> int:
        return self._cache.generation

    def fields(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(fields merged into each event, fields merged into its `@metadata`)."""
        pod = self._cache.find(self.namespace, self.pod, self.uid, self.cid)
        if pod is None:
            return PARTIAL, {}
        found = self._cache.lookup(pod, self.container)
        if pod.control.tags:
            found.event_fields["tags"] = list(pod.control.tags)
        return found.event_fields, found.metadata


class ProviderMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry or CollectorRegistry()
        p = "logship_shipper_kubernetes_"
        self.api_up = Gauge(p + "api_up", "1 while the watch of this resource works", ["resource"], registry=r)
        self.watch_errors = Counter(p + "watch_errors", "Failed list/watch calls (retried)", ["resource"], registry=r)
        self.relists = Counter(p + "relists", "Lists again after 410 Gone", ["resource"], registry=r)
        self.invalid_annotations = Counter(
            p + "invalid_annotations", "logship.io annotations ignored as invalid", ["annotation"], registry=r
        )
        self.pods = Gauge(p + "pods", "Pods in the metadata cache (deleted ones in their grace period too)", registry=r)
        self.files_excluded = Counter(
            p + "files_excluded", "Files skipped by a logship.io/exclude annotation", registry=r
        )
        self.files_partial = Counter(
            p + "files_partial", "Files opened before their pod was known (kubernetes.metadata: partial)", registry=r
        )


class MetadataProvider:
    def __init__(
        self,
        cfg: KubernetesConfig,
        node_name: str,
        api: ListWatchApi | None = None,
        registry: CollectorRegistry | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.node_name = node_name
        self.cache = MetadataCache(cfg, node_name)
        self.metrics = ProviderMetrics(registry)
        self._api = api
        self._on_change = on_change
        self._tasks: list[asyncio.Task[None]] = []
        self._waiting: dict[str, float] = {}  # path -> when first seen without its pod
        self._excluded_logged: set[str] = set()
        self._unavailable = False  # no API client could be configured: never wait for a pod
        self.watches: dict[str, ListWatch] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._api is None:
            from shipper.kubernetes.client import LightkubeApi  # the client library loads only when enabled

            try:
                self._api = LightkubeApi.from_config(self.cfg.kubeconfig, self.node_name)
            except Exception as exc:
                # metadata never stops the shipper: it ships with file-name metadata, flagged partial
                self._unavailable = True
                log.error(
                    "kubernetes metadata: no API access (%s); events ship with file-name metadata "
                    "(kubernetes.metadata: partial). Set shipper.kubernetes.kubeconfig, run in a pod with a "
                    "ServiceAccount token, or turn shipper.kubernetes.enabled off",
                    exc,
                )
                return
        for kind in KINDS:
            lw = ListWatch(
                self._api,
                kind,
                self,
                timeout=self.cfg.watch_timeout,
                backoff=Backoff(self.cfg.backoff.initial, self.cfg.backoff.max),
                on_state=self._state,
            )
            self.watches[kind] = lw
            self._tasks.append(asyncio.create_task(self._run(lw), name=f"kubernetes-{kind}"))
        self._tasks.append(asyncio.create_task(self._expire_loop(), name="kubernetes-expire"))
        log.info("kubernetes metadata: watching pods of node %s, namespaces and the node", self.node_name)

    async def _run(self, lw: ListWatch) -> None:
        relists = errors = 0
        while True:
            await lw.step()
            if lw.relists_gone != relists:
                self.metrics.relists.labels(lw.kind).inc(lw.relists_gone - relists)
                relists = lw.relists_gone
            if lw.errors != errors:
                self.metrics.watch_errors.labels(lw.kind).inc(lw.errors - errors)
                errors = lw.errors

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, max(1.0, self.cfg.deleted_grace / 4)))
            now = time.monotonic()
            if self.cache.expire(now):
                self._excluded_logged.clear()
            # files that vanished while waiting for their pod are never asked about again
            stale = now - max(60.0, self.cfg.wait_for_pod * 2)
            for path in [p for p, first in self._waiting.items() if first < stale]:
                del self._waiting[path]
            self.metrics.pods.set(len(self.cache.pods))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        close = getattr(self._api, "close", None)
        if close is not None:
            await close()

    @property
    def up(self) -> bool:
        return bool(self.watches) and all(w.up for w in self.watches.values())

    def _state(self, kind: str, up: bool, reason: str) -> None:
        self.metrics.api_up.labels(kind).set(1 if up else 0)
        if up:
            log.info("kubernetes %s: %s", kind, "listed" if reason == "listed" else "watch working again")
            return
        hint = _RBAC_HINT if "403" in reason or "Forbidden" in reason or "forbidden" in reason else ""
        log.error(
            "kubernetes %s list/watch failed: %s%s; events go on with file-name metadata (kubernetes.metadata: "
            "partial for pods not seen yet); retrying with backoff",
            kind,
            reason,
            hint,
        )

    # -- the watch's sink ----------------------------------------------------------------------

    def replace(self, kind: str, items: list[Obj], now: float) -> None:
        self._report(self.cache.replace(kind, items, now))
        self.metrics.pods.set(len(self.cache.pods))
        if self._on_change is not None:
            self._on_change()

    def apply(self, kind: str, type_: str, obj: Obj, now: float) -> None:
        self._report(self.cache.apply(kind, type_, obj, now))
        if kind == "pods" and type_ == "ADDED":
            self.metrics.pods.set(len(self.cache.pods))
            if self._waiting and self._on_change is not None:
                self._on_change()  # a file waiting for this pod is opened at once

    def _report(self, errors: list[tuple[str, str]]) -> None:
        for where, problem in errors:
            key = where.rpartition(": ")[2]
            self.metrics.invalid_annotations.labels(key).inc()
            log.warning("pod %s ignored: %s", where, problem)

    # -- the file hook -------------------------------------------------------------------------

    def open_file(self, path: str, source: Source, now: float, wait: bool = True) -> Opening | None:
        """How to open a file: None to skip it for now (excluded, or its pod not known yet)."""
        if source.input_type != "containers" or source.sidecar:
            return Opening(source, None)
        kube, cid = kubernetes_from_path(path)
        if not kube:
            return Opening(source, None)
        parts = PurePosixPath(path).parts
        m = _POD_UID.match(parts[-3]) if len(parts) >= 3 else None
        meta = FileMetadata(self.cache, kube, cid, m["uid"] if m else None)
        pod = self.cache.find(meta.namespace, meta.pod, meta.uid, cid)
        # the pod alone is not enough: its namespace's labels and the node's come from their own lists,
        # and the first lines of a file would otherwise ship without them
        if pod is None or not self.cache.synced.issuperset(KINDS):
            first = self._waiting.setdefault(path, now)
            left = first + self.cfg.wait_for_pod - now
            if left > 0 and wait and not self._unavailable:
                if first == now and self._on_change is not None:
                    asyncio.get_running_loop().call_later(left + 0.01, self._on_change)
                return None
            del self._waiting[path]
        if pod is None:
            self.metrics.files_partial.inc()
            log.warning(
                "%s: pod %s/%s not known to the kubernetes watch after %.1fs; reading with file-name metadata "
                "(kubernetes.metadata: partial) until it is",
                path,
                meta.namespace,
                meta.pod,
                self.cfg.wait_for_pod,
            )
            return Opening(source, meta)
        self._waiting.pop(path, None)
        control = pod.control
        if control.excluded(meta.container):
            if path not in self._excluded_logged:
                self._excluded_logged.add(path)
                self.metrics.files_excluded.inc()
                log.info("%s: skipped: pod %s/%s has a logship.io/exclude annotation", path, pod.namespace, pod.name)
            return None
        changes: dict[str, Any] = {}
        multiline = control.multiline_for(meta.container)
        if multiline is not None:
            _, max_lines, timeout = source.multiline or (None, 500, 5.0)
            changes["multiline"] = (multiline, max_lines, timeout)
        timestamp = control.timestamp_for(meta.container)
        if timestamp is not None:
            changes["timestamp"] = (timestamp, source.timestamp[1] if source.timestamp else "UTC")
        return Opening(dataclasses.replace(source, **changes) if changes else source, meta)
