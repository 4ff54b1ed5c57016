"""Pure: event fields from Pod, Namespace and Node objects (raw API JSON), with Filebeat's names.

Labels are dedotted as Filebeat's `labels.dedot` does (`.` -> `_`), so `app.kubernetes.io/name` and
`app` never clash as object and keyword in the index mapping. Owner references name the workload: a
ReplicaSet `web-5d9c7b6f8` owned by a Deployment is found through the pod's `pod-template-hash` label
(no ReplicaSet lookups, so no extra RBAC); a Job `backup-28930215` created by a CronJob through its
numeric schedule suffix.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

_CRONJOB_JOB = re.compile(r"^(?P<cron>.+)-\d{8,}$")


def dedot(labels: Mapping[str, str], enabled: bool = True) -> dict[str, str]:
    if not enabled:
        return dict(labels)
    return {k.replace(".", "_"): v for k, v in labels.items()}


def owners(meta: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """`{"deployment": {"name": ...}}` etc. from a pod's ownerReferences (the controller first)."""
    refs = meta.get("ownerReferences") or []
    labels = meta.get("labels") or {}
    out: dict[str, dict[str, str]] = {}
    for ref in sorted(refs, key=lambda r: not r.get("controller", False)):
        kind, name = ref.get("kind"), ref.get("name")
        if not isinstance(name, str) or not name:
            continue
        if kind == "ReplicaSet":
            out.setdefault("replicaset", {"name": name})
            hash_ = labels.get("pod-template-hash")
            if isinstance(hash_, str) and hash_ and name.endswith("-" + hash_):
                out.setdefault("deployment", {"name": name[: -len(hash_) - 1]})
        elif kind == "StatefulSet":
            out.setdefault("statefulset", {"name": name})
        elif kind == "DaemonSet":
            out.setdefault("daemonset", {"name": name})
        elif kind == "Job":
            out.setdefault("job", {"name": name})
            m = _CRONJOB_JOB.match(name)
            if m:
                out.setdefault("cronjob", {"name": m["cron"]})
    return out


def cloud_from_node(node: Mapping[str, Any]) -> dict[str, Any]:
    """`cloud.*` as Filebeat's add_cloud_metadata names it, from the Node alone (no instance metadata service)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    provider_id = (node.get("spec") or {}).get("providerID") or ""
    out: dict[str, Any] = {}
    zone = labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone")
    region = labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region")
    machine = labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type")
    scheme, _, rest = provider_id.partition("://")
    parts = [p for p in rest.split("/") if p]
    instance_id = None
    if scheme == "aws":  # aws:///us-east-1a/i-0abc (zone may be empty)
        out["provider"] = "aws"
        if len(parts) >= 2:
            zone = zone or parts[-2]
        if parts:
            instance_id = parts[-1]
        if zone and not region and re.match(r"^[a-z]{2}(-[a-z]+)+-\d+[a-z]$", zone):
            region = zone[:-1]
    elif scheme == "gce":  # gce://project/zone/instance
        out["provider"] = "gcp"
        if len(parts) == 3:
            out["project"] = {"id": parts[0]}
            zone = zone or parts[1]
            instance_id = parts[2]
    elif scheme == "azure":  # azure:///subscriptions/.../virtualMachines/name
        out["provider"] = "azure"
        if parts:
            instance_id = parts[-1]
    elif scheme:
        out["provider"] = scheme
        if parts:
            instance_id = parts[-1]
    if region:
        out["region"] = region
    if zone:
        out["availability_zone"] = zone
    if instance_id:
        out["instance"] = {"id": instance_id}
    if machine:
        out["machine"] = {"type": machine}
    return out


def allowed(keys: Mapping[str, str], patterns: Iterable[str]) -> dict[str, str]:
    pats = list(patterns)
    if not pats:
        return {}
    return {k: v for k, v in keys.items() if any(fnmatch.fnmatchcase(k, p) for p in pats)}


def container_images(pod: Mapping[str, Any]) -> dict[str, str]:
    spec = pod.get("spec") or {}
    out: dict[str, str] = {}
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c.get("name"), str) and isinstance(c.get("image"), str):
                out[c["name"]] = c["image"]
    return out


def container_ids(pod: Mapping[str, Any]) -> dict[str, str]:
    """container id (without the `containerd://` scheme) -> container name, from the pod status."""
    status = pod.get("status") or {}
    out: dict[str, str] = {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for s in status.get(key) or []:
            for cid in (s.get("containerID"), (s.get("lastState") or {}).get("terminated", {}).get("containerID")):
                if isinstance(cid, str) and "://" in cid and isinstance(s.get("name"), str):
                    out[cid.partition("://")[2]] = s["name"]
    return out
