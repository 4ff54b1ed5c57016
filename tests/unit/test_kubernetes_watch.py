"""Pure: the metadata cache, the list+watch loop with a scripted API, and the provider's file decisions.

The same loop runs against a real kube-apiserver in tests/kube_api/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from logship.backoff import Backoff
from shipper.event import EventBuilder
from shipper.harvester import Source
from shipper.identity import FileIdentity
from shipper.kubernetes.cache import MetadataCache
from shipper.kubernetes.config import KubernetesConfig
from shipper.kubernetes.provider import MetadataProvider
from shipper.kubernetes.watch import ApiError, ListWatch, Obj
from shipper.records import Record

CID = "a" * 64
PATH = f"/var/log/containers/web-1_shop_app-{CID}.log"


def pod(name: str = "web-1", uid: str = "u1", rv: str = "10", **extra: Any) -> dict[str, Any]:
    meta = {
        "name": name,
        "namespace": "shop",
        "uid": uid,
        "resourceVersion": rv,
        "labels": {"app.kubernetes.io/name": "web"},
    }
    meta.update(extra.pop("meta", {}))
    return {
        "metadata": meta,
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "shop/web:2"}]},
        "status": {"podIP": "10.0.0.5", "containerStatuses": [{"name": "app", "containerID": f"containerd://{CID}"}]},
        **extra,
    }


def source(**kw: Any) -> Source:
    base = dict(
        input_type="containers",
        tags=["containers"],
        fields={},
        max_event_bytes=1 << 20,
        multiline=None,
        timestamp=None,
        host_name="n1",
        sidecar=False,
    )
    base.update(kw)
    return Source(**base)  # type: ignore[arg-type]


def test_cache_fields_and_lookup_by_container_id() -> None:
    cache = MetadataCache(KubernetesConfig(enabled=True, annotations=["team"]), "n1")
    cache.replace("namespaces", [{"metadata": {"name": "shop", "labels": {"env": "prod"}}}], 0)
    cache.replace(
        "nodes",
        [
            {
                "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "us-east-1b"}},
                "spec": {"providerID": "aws:///us-east-1b/i-9"},
            }
        ],
        0,
    )
    cache.replace("pods", [pod(meta={"annotations": {"team": "a", "secret": "x"}})], 0)
    found = cache.find("shop", "other-name", None, CID)
    assert found is not None and found.uid == "u1"
    fields = cache.lookup(found, "app").event_fields
    k = fields["kubernetes"]
    assert k["pod"] == {"name": "web-1", "uid": "u1", "ip": "10.0.0.5"}
    assert k["labels"] == {"app_kubernetes_io/name": "web"}
    assert k["annotations"] == {"team": "a"}
    assert k["namespace_labels"] == {"env": "prod"}
    assert k["node"]["labels"] == {"topology_kubernetes_io/zone": "us-east-1b"}
    assert fields["container"] == {"image": {"name": "shop/web:2"}}
    assert fields["cloud"]["instance"] == {"id": "i-9"} and fields["cloud"]["region"] == "us-east-1"


def test_deleted_pods_kept_for_grace_then_forgotten() -> None:
    cache = MetadataCache(KubernetesConfig(enabled=True, deleted_grace=10), "n1")
    cache.replace("pods", [pod()], 0)
    cache.apply("pods", "DELETED", pod(), 100.0)
    assert cache.find("shop", "web-1") is not None
    assert cache.expire(105.0) == 0
    assert cache.expire(110.0) == 1
    assert cache.find("shop", "web-1") is None and cache.find("", "", None, CID) is None


def test_relist_marks_vanished_pods_deleted() -> None:
    cache = MetadataCache(KubernetesConfig(enabled=True, deleted_grace=10), "n1")
    cache.replace("pods", [pod(), pod("web-2", "u2")], 0)
    cache.replace("pods", [pod("web-2", "u2")], 50.0)
    assert cache.pods["u1"].deleted_at == 50.0 and cache.pods["u2"].deleted_at is None


class ScriptedApi:
    """list/watch answers in order; an Exception in the script is raised at that point."""

    def __init__(self, lists: list[Any], watches: list[list[Any]]) -> None:
        self.lists = lists
        self.watches = watches
        self.watch_rvs: list[str] = []

    async def list(self, kind: str) -> tuple[list[Obj], str]:
        item = self.lists.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def watch(self, kind: str, resource_version: str, server_timeout: float) -> AsyncIterator[tuple[str, Obj]]:
        self.watch_rvs.append(resource_version)
        for ev in self.watches.pop(0):
            if isinstance(ev, Exception):
                raise ev
            yield ev


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def replace(self, kind: str, items: list[Obj], now: float) -> None:
        self.calls.append(("replace", *[i["metadata"]["name"] for i in items]))

    def apply(self, kind: str, type_: str, obj: Obj, now: float) -> None:
        self.calls.append((type_, obj["metadata"]["name"]))


async def _nosleep(_: float) -> None:
    return None


async def test_watch_resumes_from_bookmarks_and_relists_on_410() -> None:
    api = ScriptedApi(
        lists=[([pod("a")], "100"), ([pod("b")], "300")],
        watches=[
            [("ADDED", pod("c", rv="101")), ("BOOKMARK", {"metadata": {"resourceVersion": "150"}})],  # server timeout
            [("ERROR", {"code": 410, "message": "too old resource version: 150 (200)"})],
            [("MODIFIED", pod("b", rv="301"))],
        ],
    )
    sink = Sink()
    states: list[tuple[str, bool, str]] = []
    lw = ListWatch(
        api, "pods", sink, timeout=60, backoff=Backoff(1, 2), on_state=lambda *a: states.append(a), sleep=_nosleep
    )
    for _ in range(3):
        await lw.step()
    assert api.watch_rvs == ["100", "150", "300"]
    assert sink.calls == [("replace", "a"), ("ADDED", "c"), ("replace", "b"), ("MODIFIED", "b")]
    assert lw.relists_gone == 1 and lw.resource_version == "301" and lw.up


async def test_watch_errors_back_off_keep_resource_version_and_report() -> None:
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)

    api = ScriptedApi(
        lists=[ApiError(0, "connection refused"), ([pod("a")], "5")],
        watches=[[ApiError(403, 'pods is forbidden: cannot watch resource "pods"')], [("ADDED", pod("b", rv="6"))]],
    )
    states: list[tuple[str, bool, str]] = []
    lw = ListWatch(
        api, "pods", Sink(), timeout=60, backoff=Backoff(1, 8), on_state=lambda *a: states.append(a), sleep=sleep
    )
    for _ in range(3):
        await lw.step()
    assert len(slept) == 2 and lw.errors == 2
    assert api.watch_rvs == ["5", "5"]  # the failed watch resumed from where it was, no relist
    assert [s[1] for s in states] == [False, True, False, True]
    assert "forbidden" in states[2][2]


async def test_provider_waits_for_pod_then_partial_then_enriched() -> None:
    cfg = KubernetesConfig(enabled=True, wait_for_pod=2.0)
    changes: list[int] = []
    prov = MetadataProvider(cfg, "n1", api=ScriptedApi([], []), on_change=lambda: changes.append(1))
    assert prov.open_file(PATH, source(), 10.0) is None  # waits
    assert prov.open_file(PATH, source(), 11.0) is None
    opening = prov.open_file(PATH, source(), 12.5)
    assert opening is not None and opening.metadata is not None
    fields, meta = opening.metadata.fields()
    assert fields == {"kubernetes": {"metadata": "partial"}} and meta == {}
    gen = opening.metadata.generation
    prov.apply("pods", "ADDED", pod(meta={"annotations": {"logship.io/index": "shop", "logship.io/tags": "t1"}}), 13)
    assert opening.metadata.generation != gen
    fields, meta = opening.metadata.fields()
    assert fields["kubernetes"]["labels"] == {"app_kubernetes_io/name": "web"}
    assert fields["tags"] == ["t1"] and meta == {"index_family": "shop"}
    await asyncio.sleep(0)


async def test_a_known_pod_waits_for_the_namespace_list_so_no_line_misses_its_labels() -> None:
    changes: list[int] = []
    prov = MetadataProvider(
        KubernetesConfig(enabled=True, wait_for_pod=2.0),
        "n1",
        api=ScriptedApi([], []),
        on_change=lambda: changes.append(1),
    )
    prov.replace("pods", [pod()], 10.0)
    prov.replace("nodes", [], 10.0)
    assert prov.open_file(PATH, source(), 10.0) is None  # the namespaces are not listed yet
    seen = len(changes)
    prov.replace("namespaces", [{"metadata": {"name": "shop", "labels": {"team": "shop"}}}], 10.5)
    assert len(changes) > seen  # the waiting file is looked at again at once
    opening = prov.open_file(PATH, source(), 10.5)
    assert opening is not None and opening.metadata is not None
    assert opening.metadata.fields()[0]["kubernetes"]["namespace_labels"] == {"team": "shop"}
    # a namespace list that never comes holds a file back only wait_for_pod long
    other = MetadataProvider(KubernetesConfig(enabled=True, wait_for_pod=2.0), "n1", api=ScriptedApi([], []))
    other.replace("pods", [pod()], 0.0)
    assert other.open_file(PATH, source(), 0.0) is None
    late = other.open_file(PATH, source(), 2.5)
    assert late is not None and late.metadata is not None
    assert late.metadata.fields()[0]["kubernetes"]["labels"] == {"app_kubernetes_io/name": "web"}
    assert other.metrics.files_partial._value.get() == 0  # the pod was known: not partial
    await asyncio.sleep(0)


async def test_provider_exclude_and_per_container_patterns() -> None:
    prov = MetadataProvider(KubernetesConfig(enabled=True), "n1", api=ScriptedApi([], []))
    prov.replace("pods", [pod(meta={"annotations": {"logship.io/exclude-app": "true"}})], 0)
    prov.replace("namespaces", [], 0)
    prov.replace("nodes", [], 0)
    assert prov.open_file(PATH, source(), 0) is None
    prov.apply(
        "pods",
        "MODIFIED",
        pod(
            meta={
                "annotations": {
                    "logship.io/multiline.start_pattern-app": r"^\S",
                    "logship.io/timestamp.pattern": "(?P<ts>x)",
                    "logship.io/index": "NO!",
                }
            }
        ),
        1,
    )
    opening = prov.open_file(PATH, source(), 1)
    assert opening is not None
    assert opening.source.multiline == (r"^\S", 500, 5.0)
    assert opening.source.timestamp == ("(?P<ts>x)", "UTC")
    assert prov.metrics.invalid_annotations.labels("logship.io/index")._value.get() == 1
    # app inputs and unparseable names are left alone
    app = prov.open_file("/app/logs/log-2026-01-01.log", source(input_type="app"), 1)
    assert app is not None and app.metadata is None


def test_event_builder_merges_extra_fields_and_metadata() -> None:
    b = EventBuilder(
        path=PATH,
        identity=FileIdentity(1, 2, b"x", "n1"),
        host_name="n1",
        tags=["containers"],
        fields={},
        input_type="containers",
        sidecar=False,
    )
    b.set_extra({"kubernetes": {"labels": {"app": "web"}}, "tags": ["t1"]}, {"index_family": "shop"})
    rec = Record(0, 5, 6, "hello", "stdout", "2026-01-01T00:00:00.000Z", ())
    ev = orjson.loads(b.build(rec, "2026-01-01T00:00:01.000Z"))
    assert ev["kubernetes"]["pod"]["name"] == "web-1" and ev["kubernetes"]["labels"] == {"app": "web"}
    assert ev["tags"] == ["containers", "t1"]
    assert ev["@metadata"]["index_family"] == "shop" and ev["@metadata"]["_id"]
    b.set_runtime("cri")
    ev = orjson.loads(b.build(rec, "2026-01-01T00:00:01.000Z"))
    assert ev["container"]["runtime"] == "cri" and ev["kubernetes"]["labels"] == {"app": "web"}


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["ADDED", "MODIFIED", "DELETED", "relist", "expire"]),
        st.integers(0, 4),  # pod number: name web-N, uid uN
        st.integers(0, 2),  # container id generation
        st.floats(0, 30),  # time step
    ),
    max_size=40,
)


@given(_OPS)
def test_cache_bookkeeping_stays_consistent(ops: list[tuple[str, int, int, float]]) -> None:
    cfg = KubernetesConfig(enabled=True, deleted_grace=10)
    cache = MetadataCache(cfg, "n1")
    now = 0.0
    live: dict[int, int] = {}  # pod number -> container id generation
    for op, n, gen, step in ops:
        now += step
        obj = pod(f"web-{n}", f"u{n}")
        obj["status"]["containerStatuses"][0]["containerID"] = f"containerd://{n}-{gen}"
        if op in ("ADDED", "MODIFIED"):
            cache.apply("pods", op, obj, now)
            live[n] = gen
        elif op == "DELETED":
            cache.apply("pods", op, obj, now)
            live.pop(n, None)
        elif op == "relist":
            items = [pod(f"web-{k}", f"u{k}") for k in live]
            for k, item in zip(live, items, strict=True):
                item["status"]["containerStatuses"][0]["containerID"] = f"containerd://{k}-{live[k]}"
            cache.replace("pods", items, now)
        else:
            cache.expire(now)
        # every pod still live is found by name and by its current container id, and is not marked deleted
        for k, g in live.items():
            by_name = cache.find("shop", f"web-{k}")
            assert by_name is not None and by_name.uid == f"u{k}" and by_name.deleted_at is None
            by_cid = cache.find("", "", None, f"{k}-{g}")
            assert by_cid is not None and by_cid.uid == f"u{k}"
        # a deleted pod is kept no longer than the grace period after an expiry pass
        if op == "expire":
            assert all(p.deleted_at is None or now - p.deleted_at < cfg.deleted_grace for p in cache.pods.values())
        # the indexes only point at cached pods
        assert all(uid in cache.pods for uid in cache._by_cid.values())
        assert all(uid in cache.pods for uid in cache._by_name.values())


async def test_no_api_access_never_stops_the_shipper_and_files_do_not_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = KubernetesConfig(enabled=True, wait_for_pod=30.0, kubeconfig=str(tmp_path / "missing-kubeconfig"))
    prov = MetadataProvider(cfg, "n1")
    await prov.start()  # no exception: the shipper starts without metadata
    try:
        assert "no API access" in caplog.text and "missing-kubeconfig" in caplog.text
        opening = prov.open_file(PATH, source(), 0.0)  # no wait for a pod that can never be seen
        assert opening is not None and opening.metadata is not None
        fields, _ = opening.metadata.fields()
        assert fields["kubernetes"]["metadata"] == "partial"
    finally:
        await prov.close()
