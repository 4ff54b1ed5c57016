"""Kubernetes metadata: shipper CPU per GiB and RSS with enrichment on and off, and the RSS of the watch.

    .venv/bin/python -m benchmarks.kubernetes_metadata [--files 100] [--lines 1000000] [--pods 110] [--labels 20]

Starts its own etcd and kube-apiserver on loopback (the harness of tests/kube_api; binaries from
scripts/kube.sh build), creates one pod per log file on the node `bench-node`, each with `--labels`
labels, an owner, annotations and a running status, then runs the shipper -> blackhole case of
benchmarks/shipper_blackhole.py twice on the same files: without and with `shipper.kubernetes`.

The watch's own memory: a fresh process with the shipper's modules imported measures its RSS, starts
the metadata provider (lightkube client, list+watch of pods, namespaces and the node), waits until
`--pods` pods are cached, and measures again. Writes benchmarks/results/kubernetes-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.shipper_blackhole import RESULTS, run_case

NODE = "bench-node"
NAMESPACE = "bench"

_RSS_PROBE = r"""
import asyncio, gc, json, sys, time
from shipper.heap import trim
def rss():
    gc.collect()
    trim()  # as the shipper does every registry flush
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
import shipper.app  # what the shipper imports anyway
from shipper.kubernetes.config import KubernetesConfig
from shipper.kubernetes.provider import MetadataProvider
kubeconfig, node, pods = sys.argv[1], sys.argv[2], int(sys.argv[3])
async def main():
    before = rss()
    import shipper.kubernetes.client  # lightkube, httpx2
    imported = rss()
    p = MetadataProvider(KubernetesConfig(enabled=True, kubeconfig=kubeconfig), node)
    await p.start()
    deadline = time.monotonic() + 60
    while len(p.cache.pods) < pods or len(p.cache.synced) < 3:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(p.cache.pods)} pods cached")
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    after = rss()
    await p.close()
    print(json.dumps({"node": node, "pods_cached": len(p.cache.pods), "rss_before_mib": round(before, 1),
                      "client_import_mib": round(imported - before, 1), "rss_after_mib": round(after, 1),
                      "watch_rss_mib": round(after - before, 1)}))
asyncio.run(main())
"""


def make_pods(api: Any, pods: int, labels: int) -> None:
    api.namespace(NAMESPACE, {"team": "bench", "env": "perf"})
    api.node(
        NODE,
        {"topology.kubernetes.io/zone": "us-east-1a", "node.kubernetes.io/instance-type": "m5.large"},
        "aws:///us-east-1a/i-0bench",
    )
    for i in range(pods):
        lab = {f"example.com/label-{n}": f"value-{i}-{n}" for n in range(labels - 1)}
        lab["pod-template-hash"] = "5d9c7b6f8"
        obj = api.create_pod(
            NAMESPACE,
            f"pod-{i}",
            labels=lab,
            node=NODE,
            owners=[{"kind": "ReplicaSet", "name": f"deploy-{i % 10}-5d9c7b6f8"}],
            annotations={"logship.io/tags": "bench", "kubectl.kubernetes.io/restartedAt": "2026-01-01"},
        )
        api.set_running(obj, f"10.244.{i // 250}.{i % 250 + 1}", {"app": f"{i:064x}"})


def watch_rss(api: Any, work: Path, pods: int, node: str = NODE) -> dict[str, Any]:
    kubeconfig = api.kubeconfig("admin", work / "kubeconfig")
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(kubeconfig), node, str(pods)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--files", type=int, default=100, help="container log files (one pod each)")
    p.add_argument("--lines", type=int, default=1_000_000, help="lines over all files")
    p.add_argument("--pods", type=int, default=110, help="pods on the node for the watch's RSS (>= --files)")
    p.add_argument("--labels", type=int, default=20, help="labels per pod")
    args = p.parse_args(argv)
    from tests.kube_api.conftest import KubeApi, _etcd, _kube_bin  # the same harness as the tests

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kube-bench-") as tmp:
        work = Path(tmp)
        api = KubeApi(bin=_kube_bin(), root=work / "kube")
        api.root.mkdir()
        try:
            api.start_etcd(_etcd())
            api.prepare_apiserver()
            api.start_apiserver()
            print(f"creating {args.pods} pods with {args.labels} labels each ...", flush=True)
            make_pods(api, max(args.pods, args.files), args.labels)
            api.node("empty-node", {}, "")
            empty = watch_rss(api, work, 0, node="empty-node")
            print(
                f"watch of a node without pods: +{empty['watch_rss_mib']} MiB RSS "
                f"(of which the client library {empty['client_import_mib']} MiB)",
                flush=True,
            )
            watch = watch_rss(api, work, max(args.pods, args.files))
            print(
                f"watch of {watch['pods_cached']} pods: +{watch['watch_rss_mib']} MiB RSS "
                f"({watch['rss_before_mib']} -> {watch['rss_after_mib']} MiB)",
                flush=True,
            )
            kube = {
                "kubernetes": {
                    "enabled": True,
                    "node_name": NODE,
                    "kubeconfig": str(api.kubeconfig("admin", work / "kc")),
                }
            }
            rows = []
            for label, extra in (("off", None), ("on", kube)):
                row = run_case(args.files, args.lines, work / label, extra=extra)
                row["enrichment"] = label
                rows.append(row)
                print(
                    f"enrichment {label}: {row['lines_per_s']:,} lines/s, {row['cpu_s_per_gib']} CPU s/GiB, "
                    f"RSS peak {row['rss_peak_mib']} MiB, idle {row['rss_idle_mib']} MiB",
                    flush=True,
                )
        finally:
            api.stop("apiserver")
            api.stop("etcd")
    result = {
        "benchmark": "shipper with and without Kubernetes metadata -> blackhole; RSS of the watch",
        "command": ".venv/bin/python -m benchmarks.kubernetes_metadata " + " ".join(argv or sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conditions": {
            "files": args.files,
            "lines": args.lines,
            "pods": args.pods,
            "labels_per_pod": args.labels,
            "cpus": os.cpu_count(),
            "loadavg_at_start": load_start,
            "loadavg_at_end": os.getloadavg(),
            "python": sys.version.split()[0],
        },
        "watch": watch,
        "watch_empty_node": empty,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"kubernetes-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
