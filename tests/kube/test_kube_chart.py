"""The Helm chart installed with real helm on a real node (scripts/kube.sh): the shipper DaemonSet and
the aggregator Deployment run the image built from deploy/Dockerfile, pods print to stdout/stderr
(containerd writes the CRI files, splitting long lines into partials; the kubelet rotates them), an
app pod ships through the chart's native sidecar, and every test ends with an exact count in the
OpenSearch that runs inside the cluster's network namespace.

The tests run in file order and share one release (installed by the first, upgraded and finally
uninstalled by later ones)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube.conftest import (
    APPS_NAMESPACE,
    BUSYBOX,
    CHART,
    NAMESPACE,
    RELEASE,
    SIDECAR_NAMESPACE,
    Cluster,
    apply,
    helm,
    kube_name,
    kubectl,
    kubectl_json,
    node_name,
    pod_docs,
    pod_logs_dir,
    wait_for_count,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

VALUES = Path(__file__).with_name("values.yaml")
CONTAINERS = "logstash-logs-containers-*"
APPS = "logstash-logs-app-*"
SECRET_USER = "logship-writer"
# pod names unique per session: a reused cluster (LOGSHIP_KUBE_KEEP) may still hold an earlier run's logs
RUN = secrets.token_hex(3)
PRINTER, BUSY, STEADY, USERSTORE, WEB = (f"{n}-{RUN}" for n in ("printer", "busy", "steady", "userstore", "web"))


def node_args() -> list[str]:
    """The node's paths: where this kubelet writes pod logs, where the release keeps checkpoints."""
    return [
        "--set",
        f"shipper.hostPaths.pods={pod_logs_dir()}",
        "--set",
        f"shipper.hostPaths.state=/var/lib/logship-kube/{kube_name()}/state",
    ]


def state_dir() -> Path:
    return Path(f"/var/lib/logship-kube/{kube_name()}/state/{NAMESPACE}.{RELEASE}")


def pod_manifest(name: str, script: str, namespace: str = APPS_NAMESPACE) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": name, "app.kubernetes.io/part-of": "shop"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": name,
                    "image": BUSYBOX,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", textwrap.dedent(script)],
                }
            ],
        },
    }
    return json.dumps(pod)


def counted_lines(line: str, total: int, pause_every: int) -> str:
    """A pod script printing `line` (with its counter `$i`) `total` times, pausing 1 s every `pause_every`."""
    return f"""
        i=1
        while [ $i -le {total} ]; do
          echo "{line}"
          [ $((i % {pause_every})) -eq 0 ] && sleep 1
          i=$((i+1))
        done
        """


def wait_pod_phase(namespace: str, name: str, phase: str = "Succeeded", timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = kubectl("get", "pod", "-n", namespace, name, "-o", "jsonpath={.status.phase}", check=False).strip()
        if got == phase:
            return
        assert got != "Failed", kubectl("describe", "pod", "-n", namespace, name, check=False)
        time.sleep(1)
    raise AssertionError(f"pod {namespace}/{name} not {phase}:\n" + kubectl("describe", "pod", "-n", namespace, name))


def pod_log_files(namespace: str, pod: str) -> list[Path]:
    uid = kubectl("get", "pod", "-n", namespace, pod, "-o", "jsonpath={.metadata.uid}").strip()
    return sorted((pod_logs_dir() / f"{namespace}_{pod}_{uid}" / pod).iterdir())


def shipper_pods() -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = kubectl_json(
        "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=shipper"
    )["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def aggregator_pods() -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = kubectl_json(
        "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=aggregator"
    )["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def wait_ready(timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ds = kubectl_json("get", "daemonset", "-n", NAMESPACE, f"{RELEASE}-shipper")["status"]
        dep = kubectl_json("get", "deployment", "-n", NAMESPACE, f"{RELEASE}-aggregator")["status"]
        if (
            ds.get("numberReady") == ds.get("desiredNumberScheduled") == ds.get("updatedNumberScheduled") == 1
            and dep.get("readyReplicas") == dep.get("updatedReplicas") == 2
            and len(shipper_pods()) == 1
            and len(aggregator_pods()) == 2
        ):
            return
        assert time.monotonic() < deadline, f"not ready: {ds} {dep}"
        time.sleep(1)


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[str]:
    for ns in (SIDECAR_NAMESPACE, APPS_NAMESPACE):
        apply(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
    password = secrets.token_urlsafe(16)
    kubectl("delete", "secret", "-n", NAMESPACE, "opensearchaccount", "--ignore-not-found")
    kubectl(
        "create", "secret", "generic", "opensearchaccount", "-n", NAMESPACE,
        f"--from-literal=username={SECRET_USER}", f"--from-literal=password={password}",
    )  # fmt: skip
    started = time.monotonic()
    helm("install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(VALUES), *node_args(), "--wait", "--timeout", "6m")
    # helm --wait counts a DaemonSet done with maxUnavailable pods not ready (all of them on one node)
    wait_ready()
    print(f"helm install until ready: {time.monotonic() - started:.1f}s; cluster up in {cluster.up_seconds:.1f}s")
    yield password
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


# --- install --------------------------------------------------------------------------------------


def test_install_becomes_ready(release: str) -> None:
    ds = kubectl_json("get", "daemonset", "-n", NAMESPACE, f"{RELEASE}-shipper")
    assert ds["status"]["desiredNumberScheduled"] == ds["status"]["numberReady"] == 1
    dep = kubectl_json("get", "deployment", "-n", NAMESPACE, f"{RELEASE}-aggregator")
    assert dep["status"]["readyReplicas"] == 2
    # the shipper as the DaemonSet runs it: uid 0, no capabilities, read-only root; it reads its
    # config from /etc/logship and reaches the aggregator Service by name (`kubectl exec` as the docs say)
    (pod,) = shipper_pods()
    sc = pod["spec"]["containers"][0]["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and pod["spec"]["securityContext"]["runAsUser"] == 0
    out = kubectl(
        "exec", "-n", NAMESPACE, f"ds/{RELEASE}-shipper", "--",
        "logship", "test", "output", "-c", "/etc/logship/logship.yml",
    )  # fmt: skip
    assert f"{RELEASE}-aggregator.{NAMESPACE}.svc:5044: connection OK" in out
    # an API token only where the API is called: the shipper, for its Kubernetes metadata (on by default)
    assert [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access")]
    for p in kubectl_json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=aggregator")["items"]:
        assert not [v for v in p["spec"]["volumes"] if v["name"].startswith("kube-api-access")], p["metadata"]["name"]


# --- container logs -------------------------------------------------------------------------------

LONG_STDOUT = 40_000
LONG_STDERR = 20_000


def test_container_lines_arrive_once_with_partials(release: str) -> None:
    pod = PRINTER
    apply(
        pod_manifest(
            pod,
            f"""
            i=1
            while [ $i -le 500 ]; do echo "printer out $i"; echo "printer err $i" >&2; i=$((i+1)); done
            out=$(head -c {LONG_STDOUT} /dev/zero | tr '\\0' 'o')
            err=$(head -c {LONG_STDERR} /dev/zero | tr '\\0' 'e')
            for j in 1 2 3 4 5; do echo "printer long-out $j $out"; done
            for j in 1 2 3; do echo "printer long-err $j $err" >&2; done
            """,
        )
    )
    wait_pod_phase(APPS_NAMESPACE, pod)
    # containerd itself split the long lines: partial (P) records in the kubelet's CRI file
    (log,) = [f for f in pod_log_files(APPS_NAMESPACE, pod) if f.name == "0.log"]
    tags = [line.split(" ", 3)[2] for line in log.read_text().splitlines()]
    assert tags.count("P") >= 5 * 2 + 3 and tags.count("F") == 1008

    docs = wait_for_count(lambda: pod_docs(CONTAINERS, APPS_NAMESPACE, pod), 1008)
    got = {(d["_source"]["stream"], d["_source"]["message"]) for d in docs}
    expected = {("stdout", f"printer out {i}") for i in range(1, 501)}
    expected |= {("stderr", f"printer err {i}") for i in range(1, 501)}
    expected |= {("stdout", f"printer long-out {j} {'o' * LONG_STDOUT}") for j in range(1, 6)}
    expected |= {("stderr", f"printer long-err {j} {'e' * LONG_STDERR}") for j in range(1, 4)}
    assert got == expected
    for d in docs:
        src = d["_source"]
        k = src["kubernetes"]
        assert (k["pod"]["name"], k["namespace"], k["container"]["name"], k["node"]["name"]) == (
            pod,
            APPS_NAMESPACE,
            pod,
            node_name(),
        )
        assert src["tags"][0] == "containers" and d["_index"].startswith("logstash-logs-containers-")
        assert d["_version"] == 1
        # from the API server's watch of this node's pods, not from the file name
        assert k["labels"] == {"app": pod, "app_kubernetes_io/part-of": "shop"}, k
        assert k["pod"]["uid"] and "metadata" not in k  # not flagged partial


def test_documents_carry_labels_and_the_owner_from_the_api(release: str) -> None:
    """A Deployment's pod: labels, the Deployment's name (from the ReplicaSet), the image, the node."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": WEB, "namespace": APPS_NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": WEB}},
            "template": {
                "metadata": {"labels": {"app": WEB, "tier": "frontend"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "web",
                            "image": BUSYBOX,
                            "imagePullPolicy": "Never",
                            "command": ["/bin/sh", "-c", "for i in $(seq 1 20); do echo web $i; done; sleep 3600"],
                        }
                    ],
                },
            },
        },
    }
    apply(json.dumps(deployment))
    try:
        deadline = time.monotonic() + 180
        pods: list[dict[str, Any]] = []
        while not pods and time.monotonic() < deadline:
            pods = kubectl_json("get", "pods", "-n", APPS_NAMESPACE, "-l", f"app={WEB}")["items"]
            time.sleep(1)
        (pod,) = pods
        docs = wait_for_count(lambda: pod_docs(CONTAINERS, APPS_NAMESPACE, pod["metadata"]["name"]), 20)
        assert sorted(d["_source"]["message"] for d in docs) == sorted(f"web {i}" for i in range(1, 21))
        for d in docs:
            src = d["_source"]
            k = src["kubernetes"]
            assert k["deployment"]["name"] == WEB and k["replicaset"]["name"].startswith(WEB), k
            assert k["labels"]["app"] == WEB and k["labels"]["tier"] == "frontend"
            assert k["pod"]["uid"] == pod["metadata"]["uid"]
            assert k["node"]["name"] == node_name()
            assert src["container"]["image"]["name"] == BUSYBOX
    finally:
        kubectl("delete", "deployment", "-n", APPS_NAMESPACE, WEB, "--wait=false", check=False)


def test_kubelet_rotation_loses_and_doubles_nothing(release: str) -> None:
    pod = BUSY
    total = 20_000
    pad = "r" * 150
    apply(pod_manifest(pod, counted_lines(f"busy $i {pad}", total, pause_every=1000)))
    rotated: set[str] = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        phase = kubectl("get", "pod", "-n", APPS_NAMESPACE, pod, "-o", "jsonpath={.status.phase}").strip()
        try:
            rotated |= {f.name for f in pod_log_files(APPS_NAMESPACE, pod) if f.name != "0.log"}
        except (FileNotFoundError, AssertionError):
            pass
        if phase == "Succeeded":
            break
        assert phase in ("Pending", "Running"), phase
        time.sleep(0.5)
    # ~3.4 MB through a 1 MiB limit: the kubelet rotated (0.log.<time>, older ones gzipped through a
    # transient 0.log.<time>.tmp) and deleted the oldest files (containerLogMaxFiles 3)
    assert all(re.fullmatch(r"0\.log\.\d{8}-\d{6}(\.gz|\.tmp)?", n) for n in rotated), rotated
    assert len({n for n in rotated if not n.endswith(".tmp")}) >= 2, rotated

    docs = wait_for_count(lambda: pod_docs(CONTAINERS, APPS_NAMESPACE, pod), total, timeout=240)
    seqs = sorted(int(d["_source"]["message"].split()[1]) for d in docs)
    assert seqs == list(range(1, total + 1))
    assert all(d["_source"]["message"] == f"busy {n} {pad}" for d, n in zip(
        sorted(docs, key=lambda d: int(d["_source"]["message"].split()[1])), seqs, strict=True
    ))  # fmt: skip


# --- sidecar --------------------------------------------------------------------------------------

APP_SCRIPT = r"""
f=/app/logs/log-$(date -u +%Y-%m-%d).log
n=0
emit() {
  n=$((n+1))
  printf '%s ERROR request %d failed\n' "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" "$n" >> "$f"
  printf 'java.lang.IllegalStateException: boom %d\n\tat shop.Users.load(Users.java:%d)\n' "$n" "$n" >> "$f"
  printf '\tat shop.Main.main(Main.java:7)\n' >> "$f"
}
# at termination the app writes its last events, then exits: the sidecar must still ship them
trap 'i=0; while [ $i -lt 50 ]; do emit; i=$((i+1)); done; exit 0' TERM
i=0; while [ $i -lt 200 ]; do emit; i=$((i+1)); done
touch /app/logs/.written
while true; do sleep 1; done
"""


def sidecar_app_manifest() -> dict[str, Any]:
    """The chart's own demo app pod (its native sidecar block and volumes), with an app that writes
    Java-style stack traces."""
    proc = helm(
        "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(VALUES), *node_args(),
        "--set", "sidecar.exampleApp.enabled=true", "--set", f"sidecar.exampleApp.name={USERSTORE}",
        "--set", "sidecar.exampleApp.containerName=userstore",
        "--show-only", "templates/sidecar-example-app.yaml",
    )  # fmt: skip
    dep = yaml.safe_load(proc.stdout)
    spec = dep["spec"]["template"]["spec"]
    (app,) = spec["containers"]
    app.update(image=BUSYBOX, imagePullPolicy="Never", command=["/bin/sh", "-c", APP_SCRIPT])
    assert spec["initContainers"][0]["restartPolicy"] == "Always"  # native sidecar
    spec["terminationGracePeriodSeconds"] = 60
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": USERSTORE, "namespace": SIDECAR_NAMESPACE},
        "spec": spec,
    }


def test_sidecar_ships_stack_traces_joined_and_drains_after_the_app(release: str) -> None:
    apply(json.dumps(sidecar_app_manifest()))
    wait_pod_phase(SIDECAR_NAMESPACE, USERSTORE, "Running", timeout=180)
    docs = wait_for_count(lambda: pod_docs(APPS, SIDECAR_NAMESPACE, USERSTORE), 200, timeout=180)
    # Pod deletion: the app gets SIGTERM first, writes 50 more events and exits; only then is the
    # sidecar stopped, and it ships those last events before it exits.
    kubectl("delete", "pod", "-n", SIDECAR_NAMESPACE, USERSTORE, "--wait=true", timeout=180)
    docs = wait_for_count(lambda: pod_docs(APPS, SIDECAR_NAMESPACE, USERSTORE), 250, timeout=120)
    numbers = sorted(int(d["_source"]["message"].split()[3]) for d in docs)
    assert numbers == list(range(1, 251))
    for d in docs:
        src = d["_source"]
        n = src["message"].split()[3]
        lines = src["message"].split("\n")
        assert lines[1:] == [
            f"java.lang.IllegalStateException: boom {n}",
            f"\tat shop.Users.load(Users.java:{n})",
            "\tat shop.Main.main(Main.java:7)",
        ], src["message"]
        k = src["kubernetes"]
        assert (k["pod"]["name"], k["namespace"], k["container"]["name"], k["node"]["name"]) == (
            USERSTORE,
            SIDECAR_NAMESPACE,
            "userstore",
            node_name(),
        )
        assert "app" in src["tags"] and d["_index"].startswith("logstash-logs-app-")


# --- RBAC, Secret, helm test ----------------------------------------------------------------------

CHECKS = [
    *((v, r) for v in ("get", "list", "watch") for r in ("pods", "nodes", "namespaces")),
    ("get", "secrets"), ("list", "configmaps"), ("create", "pods"), ("delete", "pods"), ("update", "nodes"),
    ("create", "events"), ("list", "services"), ("list", "secrets"), ("patch", "daemonsets.apps"),
]  # fmt: skip
# exactly what the shipper's watch calls (list, then watch), nothing more
METADATA_GRANTS = {(v, r) for v in ("list", "watch") for r in ("pods", "nodes", "namespaces")}


def can_i(sa: str, verb: str, resource: str) -> bool:
    out = kubectl(
        "auth", "can-i", verb, resource, "--all-namespaces", f"--as=system:serviceaccount:{NAMESPACE}:{sa}",
        check=False,
    )  # fmt: skip
    assert out.strip() in ("yes", "no"), out
    return out.strip() == "yes"


def granted(sa: str) -> set[tuple[str, str]]:
    return {(v, r) for v, r in CHECKS if can_i(sa, v, r)}


def test_rbac_with_kubernetes_metadata(release: str) -> None:
    # as installed (metadata on by default): read-only pods/nodes/namespaces for the shipper, nothing else
    assert granted(f"{RELEASE}-shipper") == METADATA_GRANTS
    assert granted(f"{RELEASE}-aggregator") == set()


def test_aggregator_uses_the_opensearchaccount_secret(release: str) -> None:
    pods = kubectl_json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=aggregator")["items"]
    assert len(pods) == 2
    for p in pods:
        name = p["metadata"]["name"]
        user = kubectl("exec", "-n", NAMESPACE, name, "--", "cat", "/etc/logship/opensearch-auth/username")
        password = kubectl("exec", "-n", NAMESPACE, name, "--", "cat", "/etc/logship/opensearch-auth/password")
        assert (user, password) == (SECRET_USER, release)
        env = {e["name"] for e in p["spec"]["containers"][0].get("env", [])}
        assert not {"OPENSEARCH_USERNAME", "OPENSEARCH_PASSWORD"} & env


def test_helm_test_runs_logship_test_output(release: str) -> None:
    proc = helm("test", RELEASE, "-n", NAMESPACE, "--logs", "--timeout", "3m")
    assert "Phase:          Succeeded" in proc.stdout, proc.stdout
    assert f"{RELEASE}-aggregator.{NAMESPACE}.svc:5044: connection OK" in proc.stdout
    assert "http://10.250.0.1:9200" in proc.stdout and "OK" in proc.stdout


# --- upgrade, uninstall ---------------------------------------------------------------------------


def test_upgrade_rolls_the_shippers_which_resume_from_their_checkpoints(release: str) -> None:
    (old,) = shipper_pods()
    before = {d["_id"] for d in pod_docs(CONTAINERS, APPS_NAMESPACE, PRINTER)}
    assert len(before) == 1008
    pod, total = STEADY, 3000
    apply(pod_manifest(pod, counted_lines("steady $i", total, pause_every=50)))
    wait_pod_phase(APPS_NAMESPACE, pod, "Running")
    time.sleep(5)
    # a rotated OpenSearch password: the upgrade restarts the aggregators, which read it from the files
    old_aggregators = {p["metadata"]["uid"] for p in aggregator_pods()}
    new_password = secrets.token_urlsafe(16)
    apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "opensearchaccount", "namespace": NAMESPACE},
                "stringData": {"username": SECRET_USER, "password": new_password},
            }
        )
    )
    # a changed shipper config (and Kubernetes metadata off): the DaemonSet rolls while the pod writes
    helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(VALUES), *node_args(),
        "--set", "shipper.config.scan_interval=2s", "--set", "shipper.config.kubernetes.enabled=false",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    kubectl("rollout", "status", "-n", NAMESPACE, f"ds/{RELEASE}-shipper", "--timeout=180s")
    wait_ready()
    (new,) = shipper_pods()
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    aggregators = aggregator_pods()
    assert not {p["metadata"]["uid"] for p in aggregators} & old_aggregators, "the aggregators must restart"
    for p in aggregators:
        got = kubectl(
            "exec", "-n", NAMESPACE, p["metadata"]["name"], "--", "cat", "/etc/logship/opensearch-auth/password"
        )
        assert got == new_password
    cm = kubectl_json("get", "configmap", "-n", NAMESPACE, f"{RELEASE}-shipper")
    assert yaml.safe_load(cm["data"]["logship.yml"])["shipper"]["scan_interval"] == "2s"
    assert kubectl("get", "pod", "-n", APPS_NAMESPACE, pod, "-o", "jsonpath={.status.phase}") == "Running", (
        "the writer must span the rollout"
    )
    wait_pod_phase(APPS_NAMESPACE, pod, timeout=300)
    docs = wait_for_count(lambda: pod_docs(CONTAINERS, APPS_NAMESPACE, pod), total, timeout=240)
    assert sorted(int(d["_source"]["message"].split()[1]) for d in docs) == list(range(1, total + 1))
    # resumed from the registry: what the old shipper had sent is not sent again (a resend would
    # overwrite the same _id and raise its _version)
    after = pod_docs(CONTAINERS, APPS_NAMESPACE, PRINTER)
    assert {d["_id"] for d in after} == before
    assert {d["_version"] for d in after} == {1}
    assert {d["_version"] for d in docs} == {1}
    assert (state_dir() / "registry.json").is_file()


def test_rbac_without_kubernetes_metadata(release: str) -> None:
    # after the upgrade above turned metadata off: no role, no token, the API is called nowhere
    assert granted(f"{RELEASE}-shipper") == set()
    assert granted(f"{RELEASE}-aggregator") == set()
    (pod,) = shipper_pods()
    assert not [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access")]


def test_uninstall_keeps_the_node_checkpoints(release: str) -> None:
    registry = state_dir() / "registry.json"
    assert registry.is_file()
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m")
    deadline = time.monotonic() + 120
    while shipper_pods() and time.monotonic() < deadline:
        time.sleep(1)
    assert not shipper_pods()
    assert registry.is_file()
    entries = json.loads(registry.read_text())
    assert entries  # the checkpoints of every file read, for a later install to resume from
    # and the lock is free again: no shipper holds this registry any more
    lock = subprocess.run(["flock", "-n", f"{registry}.lock", "true"], capture_output=True, timeout=30)
    assert lock.returncode == 0
