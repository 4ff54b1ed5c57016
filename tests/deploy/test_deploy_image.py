"""The container image, as far as it can be checked without a Docker engine: the Dockerfile read with
the official BuildKit parser (stages, base image, non-root user, entrypoint), and what its build stage
does, done here for real: the wheel built from exactly the files the Dockerfile copies, installed into
a fresh virtualenv with its dependencies, and `logship` run from there."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import yaml

import logship
from tests.deploy.conftest import ROOT, Rendered, container, pod_spec

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    commands: list[Any]

    def all(self, cmd: str) -> list[Any]:
        return [c for c in self.commands if c.cmd.upper() == cmd]


def stages() -> list[Stage]:
    args: dict[str, str] = {}
    result: list[Stage] = []
    for c in dockerfile.parse_file(str(DOCKERFILE)):
        cmd = c.cmd.upper()
        if cmd == "ARG" and not result:
            key, _, default = c.value[0].partition("=")
            args[key] = default.strip('"')
        elif cmd == "FROM":
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), c.value[0])
            name = c.value[2] if len(c.value) == 3 and c.value[1].upper() == "AS" else None
            result.append(Stage(base, name, []))
        elif result:
            result[-1].commands.append(c)
    return result


def build_sources() -> list[str]:
    """What the build stage copies from the context (the files the wheel is made of)."""
    sources: list[str] = []
    for c in stages()[0].all("COPY"):
        assert not any(f.startswith("--from") for f in c.flags)
        sources += list(c.value[:-1])
    return sources


# --- Dockerfile -----------------------------------------------------------------------------------


def test_multi_stage_on_slim_python_311() -> None:
    st = stages()
    assert len(st) >= 2
    for s in st:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", s.base), s.base
    assert st[0].name == "build"
    # Stage 1 installs logship into a virtualenv; stage 2 copies that virtualenv and nothing else.
    runs = " ".join(" ".join(r.value) for r in st[0].all("RUN"))
    assert "python3 -m venv /opt/logship" in runs and "/opt/logship/bin/pip install" in runs
    copies = [(tuple(c.flags), tuple(c.value)) for c in st[-1].all("COPY")]
    assert copies == [(("--from=build",), ("/opt/logship", "/opt/logship"))]
    assert not [r for r in st[-1].all("RUN") if "pip" in " ".join(r.value)]
    env = " ".join(" ".join(e.value) for e in st[-1].all("ENV"))
    assert "PATH /opt/logship/bin:$PATH" in env or "PATH=/opt/logship/bin:$PATH" in env


def test_plain_dockerfile_syntax_for_every_builder() -> None:
    # No BuildKit-only features: `RUN --mount` fails on the legacy builder, kaniko and older buildah,
    # and a `# syntax=` line makes BuildKit pull a frontend image from a registry first.
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)
    for s in stages():
        for cmd in s.commands:
            assert not [f for f in cmd.flags if f.startswith("--mount")], cmd.original


def test_config_dir_readable_by_capability_less_root() -> None:
    # The DaemonSet runs the shipper as uid 0 with every capability dropped: it can only enter
    # directories whose "other" bits allow it, so /etc/logship must not be 0750 uid 10001.
    runs = " ".join(" ".join(r.value) for r in stages()[-1].all("RUN"))
    assert "install -d -o root -g root -m 0755 /etc/logship" in runs
    assert "-m 0750 /etc/logship" not in runs


def test_runs_as_non_root_with_logship_entrypoint() -> None:
    final = stages()[-1]
    users = final.all("USER")
    assert users, "the final stage must set USER"
    user = users[-1].value[0]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, user
    # The user exists in the image (created in the same stage with that uid).
    assert any(f"--uid {uid}" in " ".join(r.value) for r in final.all("RUN"))
    (entry,) = final.all("ENTRYPOINT")
    assert entry.json and list(entry.value) == ["logship"]
    exposed = {p for c in final.all("EXPOSE") for p in c.value}
    assert {"5044", "9600", "5066"} <= exposed


def test_chart_uids_match_the_image(render: Callable[..., Rendered]) -> None:
    uid = int(stages()[-1].all("USER")[-1].value[0].split(":")[0])
    r = render("sidecar-values")
    agg = r.get("Deployment", "logship-aggregator")
    assert pod_spec(agg)["securityContext"]["runAsUser"] == uid
    assert container(r.get("Deployment", "userstore"), "logship-shipper")["securityContext"]["runAsUser"] == uid


def test_dockerignore_keeps_what_the_build_copies() -> None:
    lines = [x.strip() for x in DOCKERIGNORE.read_text().splitlines() if x.strip() and not x.startswith("#")]
    assert lines[0] == "**", "the context starts empty and re-includes only what the image needs"
    reincluded = {x[1:].removesuffix("/**") for x in lines if x.startswith("!")}
    for src in build_sources():
        assert src in reincluded, f"{src} is copied by the Dockerfile but excluded by .dockerignore"
        assert (ROOT / src).exists(), src


# --- the wheel the image installs -----------------------------------------------------------------


@dataclass
class Installed:
    wheel: Path
    venv: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / "logship"), *args], capture_output=True, text=True, timeout=120)


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("image")
    context = work / "context"
    context.mkdir()
    # The build context as the Dockerfile sees it: only what its build stage copies.
    for src in build_sources():
        path = ROOT / src
        if path.is_dir():
            subprocess.run(
                ["cp", "-r", str(path), str(context / src)], check=True, timeout=60
            )  # fmt: skip
        else:
            (context / src).write_bytes(path.read_bytes())
    for junk in context.rglob("__pycache__"):
        subprocess.run(["rm", "-rf", str(junk)], check=True, timeout=60)
    dist = work / "dist"
    # Stage 1: `pip wheel` (with build isolation, as in the image).
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(context)])
    (wheel,) = dist.glob("logship-*.whl")
    # Stage 2: a fresh interpreter environment with nothing but the wheel and its dependencies.
    venv = work / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", str(venv)])
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-compile",
            "--disable-pip-version-check",
            str(wheel),
        ]
    )
    yield Installed(wheel, venv)


@pytest.mark.slow
def test_wheel_holds_all_packages_and_the_entry_point(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as zf:
        names = zf.namelist()
        tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        assert tops == {"logship", "shipper", "aggregator"}
        assert "logship/py.typed" in names
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "logship = logship.cli:main" in zf.read(entry).decode()
        assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]


@pytest.mark.slow
def test_installed_logship_version_runs(installed: Installed) -> None:
    proc = installed.run("version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"logship {logship.__version__} (python 3.11")
    # The fresh environment uses its own copy, not the source tree.
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", "import logship, shipper, aggregator; print(logship.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=installed.venv,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(installed.venv))
    check = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout


@pytest.mark.slow
def test_installed_logship_accepts_the_chart_configs(installed: Installed, default: Rendered, tmp_path: Path) -> None:
    # The installed package (not the source tree) validates both rendered configs.
    for name in ("logship-shipper", "logship-aggregator"):
        text = default.get("ConfigMap", name)["data"]["logship.yml"]
        path = tmp_path / f"{name}.yml"
        path.write_text(text)
        section = next(iter(yaml.safe_load(text)))
        env = {"OPENSEARCH_USERNAME": "u", "OPENSEARCH_PASSWORD": "p", "NODE_NAME": "n1"}
        proc = subprocess.run(
            [str(installed.venv / "bin" / "logship"), "test", "config", "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", **env},
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"{section}: config OK" in proc.stdout
