"""Pure: what the watch delivered (this node's pods, the namespaces, this node), ready for events.

Each pod's event fields are computed once when the watch delivers it, not per event. A deleted pod
stays for `deleted_grace` seconds, so the last lines of its files are still enriched. `generation`
changes with every update, so a file's builder knows when to ask again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipper.kubernetes import fields as f
from shipper.kubernetes.annotations import PodControl, parse
from shipper.kubernetes.config import KubernetesConfig


@dataclass(slots=True)
class PodMeta:
    uid: str
    name: str
    namespace: str
    fields: dict[str, Any]  # `kubernetes.*` of the pod, without container and namespace labels
    images: dict[str, str]
    container_ids: dict[str, str]
    control: PodControl
    deleted_at: float | None = None


@dataclass(slots=True)
class Lookup:
    pod: PodMeta
    event_fields: dict[str, Any]  # merged into each event of the file
    metadata: dict[str, Any] = field(default_factory=dict)  # merged into `@metadata`


class MetadataCache:
    def __init__(self, cfg: KubernetesConfig, node_name: str) -> None:
        self.cfg = cfg
        self.node_name = node_name
        self.pods: dict[str, PodMeta] = {}  # uid ->
        self._by_name: dict[tuple[str, str], str] = {}  # (namespace, name) -> uid of the newest
        self._by_cid: dict[str, str] = {}  # container id -> uid
        self.namespaces: dict[str, dict[str, str]] = {}  # name -> dedotted labels
        self.node_fields: dict[str, Any] = {}
        self.cloud: dict[str, Any] = {}
        self.generation = 0
        self.synced: set[str] = set()  # kinds listed at least once

    # -- updates from the watch ----------------------------------------------------------------

    def apply(self, kind: str, type_: str, obj: Mapping[str, Any], now: float) -> list[tuple[str, str]]:
        """One watch event (ADDED / MODIFIED / DELETED); returns invalid annotations found, if any."""
        self.generation += 1
        if kind == "pods":
            if type_ == "DELETED":
                self._pod_deleted(obj, now)
                return []
            return self._pod(obj)
        if kind == "namespaces":
            name = (obj.get("metadata") or {}).get("name")
            if isinstance(name, str):
                if type_ == "DELETED":
                    self.namespaces.pop(name, None)
                else:
                    self.namespaces[name] = f.dedot(
                        (obj.get("metadata") or {}).get("labels") or {}, self.cfg.labels_dedot
                    )
            return []
        if kind == "nodes":
            if type_ != "DELETED":
                self._node(obj)
            return []
        raise ValueError(f"unknown kind {kind!r}")

    def replace(self, kind: str, items: Iterable[Mapping[str, Any]], now: float) -> list[tuple[str, str]]:
        """A full list (at start, after 410 Gone): objects not in it were deleted meanwhile."""
        errors: list[tuple[str, str]] = []
        self.generation += 1
        self.synced.add(kind)
        items = list(items)
        if kind == "pods":
            seen = set()
            for obj in items:
                errors += self._pod(obj)
                seen.add((obj.get("metadata") or {}).get("uid"))
            for uid, pod in self.pods.items():
                if uid not in seen and pod.deleted_at is None:
                    pod.deleted_at = now
        elif kind == "namespaces":
            self.namespaces.clear()
            for obj in items:
                self.apply(kind, "ADDED", obj, now)
        elif kind == "nodes":
            for obj in items:
                self._node(obj)
        return errors

    def expire(self, now: float) -> int:
        """Forget pods deleted more than `deleted_grace` ago; returns how many."""
        gone = [
            uid
            for uid, p in self.pods.items()
            if p.deleted_at is not None and now - p.deleted_at >= self.cfg.deleted_grace
        ]
        for uid in gone:
            pod = self.pods.pop(uid)
            if self._by_name.get((pod.namespace, pod.name)) == uid:
                del self._by_name[(pod.namespace, pod.name)]
            for cid in pod.container_ids:
                if self._by_cid.get(cid) == uid:
                    del self._by_cid[cid]
        if gone:
            self.generation += 1
        return len(gone)

    def _pod(self, obj: Mapping[str, Any]) -> list[tuple[str, str]]:
        meta = obj.get("metadata") or {}
        uid, name, ns = meta.get("uid"), meta.get("name"), meta.get("namespace")
        if not (isinstance(uid, str) and isinstance(name, str) and isinstance(ns, str)):
            return []
        cfg = self.cfg
        annotations = meta.get("annotations") or {}
        kube: dict[str, Any] = {"pod": {"name": name, "uid": uid}, "namespace": ns}
        ip = (obj.get("status") or {}).get("podIP")
        if ip:
            kube["pod"]["ip"] = ip
        labels = meta.get("labels") or {}
        if labels:
            kube["labels"] = f.dedot(labels, cfg.labels_dedot)
        shown = f.allowed(annotations, cfg.annotations)
        if shown:
            kube["annotations"] = f.dedot(shown, cfg.annotations_dedot)
        kube.update(f.owners(meta))
        control = parse(annotations)
        pod = PodMeta(uid, name, ns, kube, f.container_images(obj), f.container_ids(obj), control)
        old = self.pods.get(uid)
        if old is not None:
            for cid in old.container_ids:
                if self._by_cid.get(cid) == uid:
                    del self._by_cid[cid]
        self.pods[uid] = pod
        self._by_name[(ns, name)] = uid
        for cid in pod.container_ids:
            self._by_cid[cid] = uid
        # report an invalid annotation once per pod, not at every status update
        if old is not None and old.control.errors == control.errors:
            return []
        return [(f"{ns}/{name}: {key}", problem) for key, problem in control.errors]

    def _pod_deleted(self, obj: Mapping[str, Any], now: float) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        pod = self.pods.get(uid) if isinstance(uid, str) else None
        if pod is not None:
            pod.deleted_at = now

    def _node(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("name") != self.node_name:
            return
        node: dict[str, Any] = {"name": self.node_name}
        if meta.get("uid"):
            node["uid"] = meta["uid"]
        labels = meta.get("labels") or {}
        if self.cfg.node_labels and labels:
            node["labels"] = f.dedot(labels, self.cfg.labels_dedot)
        self.node_fields = node
        self.cloud = f.cloud_from_node(obj) if self.cfg.cloud else {}

    # -- lookups -------------------------------------------------------------------------------

    def find(self, namespace: str, pod: str, uid: str | None = None, container_id: str | None = None) -> PodMeta | None:
        """The pod of a log file: by container id (exact), by uid, else the newest pod of that name."""
        for key in (self._by_cid.get(container_id) if container_id else None, uid):
            if key is not None and key in self.pods:
                return self.pods[key]
        found = self._by_name.get((namespace, pod))
        return None if found is None else self.pods.get(found)

    def lookup(self, pod: PodMeta, container: str) -> Lookup:
        kube = dict(pod.fields)
        kube["container"] = {"name": container}
        ns_labels = self.namespaces.get(pod.namespace)
        if self.cfg.namespace_labels and ns_labels:
            kube["namespace_labels"] = ns_labels
        kube["node"] = dict(self.node_fields) or {"name": self.node_name}
        out: dict[str, Any] = {"kubernetes": kube}
        image = pod.images.get(container)
        if image:
            out["container"] = {"image": {"name": image}}
        if self.cloud:
            out["cloud"] = self.cloud
        metadata: dict[str, Any] = {}
        if pod.control.index:
            metadata["index_family"] = pod.control.index
        return Lookup(pod, out, metadata)
