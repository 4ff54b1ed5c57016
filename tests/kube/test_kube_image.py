"""The image the cluster runs is deploy/Dockerfile itself, built by buildah (a builder without
BuildKit) on a Debian bookworm base with Python 3.11 made by mmdebstrap (no registry here). Listed
from the built OCI archive: its users, the layout and permissions of every directory the chart
mounts into or runs from, and its config, each compared with what the Dockerfile declares and with
what the chart's security contexts need (the shipper runs as uid 0 with every capability dropped)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.test_deploy_image import stages
from tests.kube.conftest import KUBE, _env
from tests.kube.image import Entry, Image, read_oci_archive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def image() -> Image:
    proc = subprocess.run(
        ["bash", str(KUBE), "logship-image"], capture_output=True, text=True, env=_env(), timeout=3500
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return read_oci_archive(Path(proc.stdout.strip().splitlines()[-1]))


def declared(cmd: str) -> list[str]:
    values: list[str] = []
    for c in stages()[-1].all(cmd):
        values += list(c.value)
    return values


def test_config_is_what_the_dockerfile_declares(image: Image) -> None:
    cfg = image.config["config"]
    assert cfg["User"] == declared("USER")[-1] == "10001:10001"
    assert cfg["Entrypoint"] == declared("ENTRYPOINT") == ["logship"]
    assert cfg["Cmd"] == declared("CMD") == ["--help"]
    assert cfg["WorkingDir"] == declared("WORKDIR")[-1] == "/var/lib/logship"
    assert set(cfg["ExposedPorts"]) == {f"{p}/tcp" for p in declared("EXPOSE")} == {"5044/tcp", "9600/tcp", "5066/tcp"}
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["PATH"].startswith("/opt/logship/bin:")
    assert env["PYTHONUNBUFFERED"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert cfg["Labels"]["org.opencontainers.image.title"] == "logship"


def test_users(image: Image) -> None:
    # as the Dockerfile's useradd/groupadd say, and as the chart's runAsUser/runAsGroup/fsGroup expect
    assert image.users()["logship"] == (10001, 10001, "/var/lib/logship", "/usr/sbin/nologin")
    assert image.groups()["logship"] == 10001
    assert image.users()["root"][:2] == (0, 0)


def _dir(image: Image, path: str) -> Entry:
    e = image.entries[path]
    assert e.kind == "dir", path
    return e


def test_layout_and_permissions(image: Image) -> None:
    etc = _dir(image, "/etc/logship")
    assert (etc.mode, etc.uid, etc.gid) == (0o755, 0, 0)
    state = _dir(image, "/var/lib/logship")
    assert (state.mode, state.uid, state.gid) == (0o750, 10001, 10001)
    venv = _dir(image, "/opt/logship")
    assert (venv.uid, venv.gid) == (0, 0)
    under = [e for p, e in image.entries.items() if p.startswith("/opt/logship/")]
    assert len(under) > 500
    # the virtualenv is root's and read-only for everyone else; no pip, no source tree, no wheels
    assert all(e.uid == 0 and e.gid == 0 for e in under)
    assert not [e.path for e in under if e.kind != "symlink" and e.mode & 0o022]
    assert "/opt/logship/bin/pip" not in image.entries and "/src" not in image.entries
    assert image.entries["/opt/logship/bin/logship"].mode & 0o111
    assert image.text("/opt/logship/bin/logship").startswith("#!/opt/logship/bin/python")
    assert any(p.startswith("/opt/logship/lib/python3.11/site-packages/shipper/") for p in image.entries)
    assert any(p.endswith(".pyc") and "/site-packages/logship/" in p for p in image.entries)


def _readable_by_capless_root(image: Image, path: str) -> bool:
    """Root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH gets the owner bits only where it owns the
    file, else the group bits (gid 0) or the other bits, like any user."""
    parts = path.strip("/").split("/")
    for i in range(len(parts) + 1):
        p = "/" + "/".join(parts[:i]) if i else "/"
        e = image.entries.get(p)
        if e is None and p == "/":
            continue  # the root directory is the runtime's (0755 root), not in any layer
        if e is None:
            return False
        if e.kind == "symlink":
            return True  # resolved elsewhere (python3 -> python3.11); the target is checked on its own
        need = 0o1 if i < len(parts) else (0o1 if e.kind == "dir" else 0o4)
        bits = (e.mode >> 6) if e.uid == 0 else (e.mode >> 3) if e.gid == 0 else e.mode
        if not bits & need:
            return False
    return True


def test_capability_less_root_reads_what_the_shipper_needs(image: Image) -> None:
    # The DaemonSet's shipper: uid 0, capabilities dropped. It must enter /etc/logship (the config is
    # mounted there), run the venv's entry point and import every module.
    for path in ("/etc/logship", "/opt/logship/bin/logship", "/opt/logship/pyvenv.cfg", "/usr/bin/python3.11"):
        assert _readable_by_capless_root(image, path), path
    modules = [p for p in image.entries if p.endswith(".py") and "/site-packages/" in p]
    assert modules and all(_readable_by_capless_root(image, p) for p in modules)
    # and the same check refuses what the old image had: /etc/logship 0750 owned by uid 10001
    image.entries["/etc/logship"] = Entry("/etc/logship", "dir", 0o750, 10001, 10001)
    try:
        assert not _readable_by_capless_root(image, "/etc/logship")
    finally:
        image.entries["/etc/logship"] = Entry("/etc/logship", "dir", 0o755, 0, 0)
