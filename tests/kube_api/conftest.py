"""A real kube-apiserver + etcd on loopback, for the Kubernetes metadata tests.

No kubelet: pods are created with `spec.nodeName` set and their status (pod IP, container ids) is
written through the status subresource, as a kubelet would. The apiserver has its own CA and serving
certificate, a static token file (an admin and one user per RBAC variant) and a service-account key
pair. Binaries: `scripts/kube.sh build` (cached outside the clone); etcd: Debian's etcd-server,
installed here if missing. Both stop at the end of the session; `restart_apiserver()` lets a test stop
and start the apiserver mid-run.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from logship.demo.pipeline import free_port

ROOT = Path(__file__).resolve().parents[2]
KUBE_SCRIPT = ROOT / "scripts" / "kube.sh"
NODE = "node-a"
# the Node object of NODE, as on EKS (its providerID cannot change once set)
NODE_LABELS = {
    "topology.kubernetes.io/region": "us-east-1",
    "topology.kubernetes.io/zone": "us-east-1a",
    "node.kubernetes.io/instance-type": "m5.large",
    "kubernetes.io/hostname": NODE,
}
NODE_PROVIDER_ID = "aws:///us-east-1a/i-0abc123def"
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
# user name -> token; RBAC for them is created by the tests (the chart's ClusterRole, or a broken one)
USERS = {name: f"{name}-{uuid.uuid4().hex}" for name in ("shipper", "nowatch")}


def _kube_bin() -> Path:
    """Where kube-apiserver is: only it is needed here, so a cache that has it is not waited on."""
    path = subprocess.run([str(KUBE_SCRIPT), "path"], capture_output=True, text=True, timeout=60)
    if path.returncode == 0 and os.access(Path(path.stdout.strip()) / "kube-apiserver", os.X_OK):
        return Path(path.stdout.strip())
    proc = subprocess.run([str(KUBE_SCRIPT), "build"], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"scripts/kube.sh build failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _etcd() -> str:
    found = shutil.which("etcd")
    if found:
        return found
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "etcd-server"]):
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        )
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed (etcd for the kube-apiserver tests):\n{proc.stderr[-2000:]}")
    found = shutil.which("etcd")
    assert found, "etcd-server installed but no etcd on PATH"
    return found


def _wait(proc: subprocess.Popen[bytes], log: Path, check: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    pytest.fail(f"{what} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


@dataclass
class KubeApi:
    bin: Path
    root: Path
    url: str = ""
    ca: Path = field(default_factory=Path)
    etcd_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    apiserver_args: list[str] = field(default_factory=list)
    _ctx: ssl.SSLContext | None = None

    # -- requests with the admin token ---------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN, content_type: str = "application/json"
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._ctx, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            exc.msg = f"{exc.msg}: {exc.read().decode(errors='replace')[:500]}"
            raise

    def apply(self, path: str, obj: dict[str, Any]) -> Any:
        """Create, or replace if it exists (RBAC objects, namespaces)."""
        try:
            return self.request("POST", path, obj)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
        current = self.request("GET", f"{path}/{obj['metadata']['name']}")
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        return self.request("PUT", f"{path}/{obj['metadata']['name']}", obj)

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.apply(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}},
        )
        # what the controller-manager would create; pods are refused without it
        self.apply(
            f"/api/v1/namespaces/{name}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
        )

    def node(self, name: str, labels: dict[str, str], provider_id: str) -> None:
        self.apply(
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels},
                "spec": {"providerID": provider_id},
            },
        )

    def create_pod(
        self,
        ns: str,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        owners: list[dict[str, Any]] | None = None,
        containers: dict[str, str] | None = None,
        node: str = NODE,
    ) -> dict[str, Any]:
        containers = containers or {"app": "registry.example/app:1.0"}
        meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {}, "annotations": annotations or {}}
        if owners:
            meta["ownerReferences"] = [
                {"apiVersion": "apps/v1", "uid": str(uuid.uuid4()), "controller": i == 0, **o}
                for i, o in enumerate(owners)
            ]
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": c, "image": i} for c, i in containers.items()]},
        }
        pod: dict[str, Any] = self.request("POST", f"/api/v1/namespaces/{ns}/pods", body)
        return pod

    def set_running(self, pod: dict[str, Any], ip: str, container_ids: dict[str, str]) -> None:
        """What the kubelet would report: pod IP and container ids."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        status = {
            "status": {
                "phase": "Running",
                "podIP": ip,
                "containerStatuses": [
                    {
                        "name": c,
                        "containerID": f"containerd://{cid}",
                        "image": "x",
                        "imageID": "",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {}},
                    }
                    for c, cid in container_ids.items()
                ],
            }
        }
        self.request(
            "PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", status, content_type="application/merge-patch+json"
        )

    def delete_pod(self, ns: str, name: str) -> None:
        self.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", {"gracePeriodSeconds": 0})

    def kubeconfig(self, user: str, path: Path) -> Path:
        token = ADMIN_TOKEN if user == "admin" else USERS[user]
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": self.url, "certificate-authority": str(self.ca)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": user}}],
        }
        path.write_text(json.dumps(cfg))
        return path

    # -- etcd ------------------------------------------------------------------------------------

    def etcd_revision(self) -> int:
        req = urllib.request.Request(
            f"{self.etcd_url}/v3/kv/range", data=json.dumps({"key": base64.b64encode(b"/").decode()}).encode()
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(json.loads(resp.read())["header"]["revision"])

    def compact_etcd(self) -> int:
        rev = self.etcd_revision()
        req = urllib.request.Request(
            f"{self.etcd_url}/v3/kv/compaction", data=json.dumps({"revision": str(rev), "physical": True}).encode()
        )
        urllib.request.urlopen(req, timeout=30).read()
        return rev

    # -- processes -------------------------------------------------------------------------------

    def start_etcd(self, etcd: str) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        log = self.root / "etcd.log"
        self.procs["etcd"] = subprocess.Popen(
            [
                etcd,
                "--name",
                "t",
                "--data-dir",
                str(self.root / "etcd"),
                "--listen-client-urls",
                self.etcd_url,
                "--advertise-client-urls",
                self.etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"t=http://127.0.0.1:{peer}",
                "--log-level",
                "warn",
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait(
            self.procs["etcd"],
            log,
            lambda: urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2).status == 200,
            "etcd",
        )

    def prepare_apiserver(self) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "kubernetes.default.svc", "10.96.0.1")
        self.ca = self.root / "ca.crt"
        ca.cert_pem.write_to_path(str(self.ca))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "apiserver.crt"))
        cert.private_key_pem.write_to_path(str(self.root / "apiserver.key"))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.root / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (self.root / "sa.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        lines = [f'{ADMIN_TOKEN},admin,admin,"system:masters"'] + [f"{t},{u},{u}" for u, t in USERS.items()]
        (self.root / "tokens.csv").write_text("\n".join(lines) + "\n")
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        self._ctx = ssl.create_default_context(cafile=str(self.ca))
        self.apiserver_args = [
            str(self.bin / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self.root / 'apiserver.crt'}",
            f"--tls-private-key-file={self.root / 'apiserver.key'}",
            f"--token-auth-file={self.root / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={self.root / 'sa.pub'}",
            f"--service-account-signing-key-file={self.root / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.96.0.0/24",
            f"--cert-dir={self.root / 'certs'}",
            "--enable-priority-and-fairness=false",
            "--etcd-compaction-interval=0",
            "--v=1",
        ]

    def start_apiserver(self) -> None:
        log = self.root / "apiserver.log"
        self.procs["apiserver"] = subprocess.Popen(
            self.apiserver_args, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )

        def ready() -> bool:
            req = urllib.request.Request(self.url + "/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            return urllib.request.urlopen(req, context=self._ctx, timeout=2).status == 200

        _wait(self.procs["apiserver"], log, ready, "kube-apiserver", timeout=120)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart_apiserver(self, down_for: float = 0.0) -> None:
        self.stop("apiserver")
        time.sleep(down_for)
        self.start_apiserver()


@pytest.fixture(scope="session")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    api = KubeApi(bin=_kube_bin(), root=tmp_path_factory.mktemp("kube-api"))
    try:
        api.start_etcd(_etcd())
        api.prepare_apiserver()
        api.start_apiserver()
        yield api
    finally:
        api.stop("apiserver")
        api.stop("etcd")
