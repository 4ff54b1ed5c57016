"""The generator writes an EKS-node-shaped tree whose manifest matches what is on disk."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from logship.loggen import MANIFEST_NAME, GenConfig, Generator
from logship.loggen.readback import read_tree

START = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
LINK_NAME = re.compile(r"^(?P<pod>[a-z0-9-]+)_(?P<ns>[a-z0-9-]+)_(?P<container>[a-z0-9-]+)-(?P<id>[0-9a-f]{64})\.log$")


def generate(root: Path, **kw: Any) -> dict[str, Any]:
    kw.setdefault("rate", 0)
    kw.setdefault("lines", 600)
    kw.setdefault("start_time", START)
    return Generator(GenConfig(root=root, **kw)).run()


def tree_bytes(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if name != MANIFEST_NAME and not p.is_symlink():
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def assert_manifest_matches_disk(manifest: dict[str, Any]) -> None:
    tree = read_tree(manifest)
    assert tree.unmarked == 0
    assert not tree.duplicates
    for src in manifest["sources"]:
        seqs = sorted(seq for s, seq in tree.events if s == src["id"])
        assert seqs == list(range(src["events"])), src["id"]
    assert len(tree.events) == manifest["events"]
    assert sum(f["events"] for f in manifest["families"].values()) == manifest["events"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", seed=7, long_ratio=0.02, stack_ratio=0.3)
    b = generate(tmp_path / "b", seed=7, long_ratio=0.02, stack_ratio=0.3)
    c = generate(tmp_path / "c", seed=8, long_ratio=0.02, stack_ratio=0.3)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert tree_bytes(tmp_path / "a") != tree_bytes(tmp_path / "c")
    assert a["run"] == b["run"] != c["run"]


def test_eks_layout_symlinks_and_manifest_fields(tmp_path: Path) -> None:
    m = generate(tmp_path, pods=3, containers_per_pod=2, format="mixed")
    containers = [s for s in m["sources"] if s["kind"] == "container"]
    assert len(containers) == 6
    assert {s["format"] for s in containers} == {"docker", "cri"}
    for s in containers:
        link, target = Path(s["path"]), Path(s["target"])
        assert link.is_symlink() and link.resolve() == target.resolve()
        assert link.parent == tmp_path / "var/log/containers"
        parsed = LINK_NAME.match(link.name)
        assert parsed is not None, link.name
        k8s = s["kubernetes"]
        assert parsed["pod"] == k8s["pod"]["name"]
        assert parsed["ns"] == k8s["namespace"]
        assert parsed["container"] == k8s["container"]["name"]
        assert parsed["id"] == s["container"]["id"]
        assert target.name == "0.log"
        assert target.parent.name == k8s["container"]["name"]
        assert target.parent.parent.name == f"{k8s['namespace']}_{k8s['pod']['name']}_{k8s['pod']['uid']}"
        assert target.parent.parent.parent == tmp_path / "var/log/pods"
        assert s["container"]["runtime"] == s["format"]
        assert s["family"] == "containers" and s["tags"] == ["containers"]
    assert (tmp_path / MANIFEST_NAME).exists()
    assert orjson.loads((tmp_path / MANIFEST_NAME).read_bytes()) == orjson.loads(orjson.dumps(m))
    assert_manifest_matches_disk(m)


def test_long_lines_become_docker_splits_and_cri_partials(tmp_path: Path) -> None:
    m = generate(tmp_path, pods=2, format="mixed", long_ratio=0.1, long_bytes=20_000, lines=400, app_share=0)
    tree = read_tree(m)
    for s in m["sources"]:
        assert s["split_events"] > 0, s["id"]
        assert s["records"] > s["events"]
        data = Path(s["target"]).read_bytes()
        if s["format"] == "cri":
            assert b" P " in data and b" F " in data
        else:
            assert b'\\n"' in data and re.search(rb'"log":"[^"]*[^n"]","stream"', data)
        longs = [e for (src, _), e in tree.events.items() if src == s["id"] and len(e.message) == 20_000]
        assert len(longs) == s["split_events"]
    assert_manifest_matches_disk(m)


@pytest.mark.parametrize("style", ["rename", "copytruncate", "kubelet"])
def test_rotation_keeps_every_event_on_disk(tmp_path: Path, style: str) -> None:
    m = generate(tmp_path, pods=2, rotate=style, rotate_bytes=8 * 1024, rotate_keep=50, lines=1500, app_share=0.1)
    for s in (s for s in m["sources"] if s["kind"] == "container"):
        assert s["rotations"] >= 3, s
        files = s["files"]
        assert "0.log" in files
        if style == "kubelet":
            assert any(re.fullmatch(r"0\.log\.\d{8}-\d{6}\.gz", f) for f in files)
            assert sum(bool(re.fullmatch(r"0\.log\.\d{8}-\d{6}", f)) for f in files) == 1
        else:
            assert "0.log.1" in files and "0.log.2" in files
        if style == "copytruncate":
            assert os.stat(s["target"]).st_ino == os.stat(Path(s["path"])).st_ino
    assert_manifest_matches_disk(m)


def test_kubelet_rotation_prunes_beyond_max_files(tmp_path: Path) -> None:
    m = generate(tmp_path, pods=1, rotate="kubelet", rotate_bytes=4096, rotate_keep=4, lines=800, app_share=0)
    src = m["sources"][0]
    assert src["rotations"] > 4
    assert len(src["files"]) == 4  # 0.log, one plain rotated file, two gzipped
    with gzip.open(Path(src["target"]).parent / next(f for f in src["files"] if f.endswith(".gz"))) as fh:
        assert fh.readline().startswith(b"{")


def test_app_log_spans_a_date_rollover_with_a_fake_clock(tmp_path: Path) -> None:
    m = generate(tmp_path, start_time=datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), rate=0, lines=3000, app_share=0.5)
    app = next(s for s in m["sources"] if s["kind"] == "app")
    assert set(app["files"]) == {"log-2026-01-31.log", "log-2026-02-01.log"}
    assert set(app["dates"]) == {"2026.01.31", "2026.02.01"}
    assert m["families"]["containers"]["dates"].keys() == {"2026.01.31", "2026.02.01"}
    tree = read_tree(m)
    for (src, _), event in tree.events.items():
        if src == "app":
            day = Path(event.file).name[4:14]
            assert event.message.startswith(day), (event.file, event.message[:30])
    per_file = {name: 0 for name in app["files"]}
    for (src, _), event in tree.events.items():
        if src == "app":
            per_file[Path(event.file).name] += 1
    assert per_file == app["files"]
    assert_manifest_matches_disk(m)


def test_app_days_writes_earlier_days_up_front(tmp_path: Path) -> None:
    m = generate(tmp_path, app_days=3, app_backlog=20, lines=200)
    app = next(s for s in m["sources"] if s["kind"] == "app")
    assert app["files"]["log-2026-02-27.log"] == 20
    assert app["files"]["log-2026-02-28.log"] == 20
    assert app["files"]["log-2026-03-01.log"] == app["events"] - 40
    assert m["events"] == 240
    assert_manifest_matches_disk(m)


def test_stack_traces_are_one_multiline_record(tmp_path: Path) -> None:
    m = generate(tmp_path, stack_ratio=0.5, app_share=1.0, pods=0, lines=200)
    app = m["sources"][0]
    assert 60 < app["multiline_events"] < 140
    tree = read_tree(m)
    traces = [e.message for e in tree.events.values() if "\n" in e.message]
    assert len(traces) == app["multiline_events"]
    for t in traces:
        lines = t.split("\n")
        assert " ERROR " in lines[0]
        assert re.match(r"^[\w.]+(Exception|Error): ", lines[1])
        assert all(ln.startswith(("\tat ", "Caused by: ", "\t... ")) for ln in lines[2:])


def test_rate_and_duration_and_stop(tmp_path: Path) -> None:
    gen = Generator(GenConfig(root=tmp_path / "d", rate=200, duration=0.5, tick=0.01))
    m = gen.run()
    assert 50 <= m["events"] <= 101  # about rate x duration; the schedule writes one tick ahead at most
    stop = threading.Event()
    gen2 = Generator(GenConfig(root=tmp_path / "s", rate=100, tick=0.01))
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    m2 = gen2.run(stop=stop)
    assert 0 < m2["events"] < 100
    assert_manifest_matches_disk(m2)


def test_invalid_config_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rotate must be one of"):
        Generator(GenConfig(root=tmp_path, rotate="weekly", lines=1))
    with pytest.raises(ValueError, match="unlimited rate needs"):
        Generator(GenConfig(root=tmp_path, rate=0))


def test_cli_writes_tree_manifest_and_progress(tmp_path: Path) -> None:
    root = tmp_path / "node"
    proc = subprocess.run(
        [sys.executable, "-m", "logship.loggen", "-o", str(root), "-n", "300", "-r", "0", "--pods", "2",
         "--format", "cri", "--start-time", "2026-03-01T10:00:00Z", "--seed", "3"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "loggen: wrote 300 events" in proc.stderr
    m = orjson.loads((root / MANIFEST_NAME).read_bytes())
    assert m["events"] == 300 and m["seed"] == 3
    assert {s["format"] for s in m["sources"] if s["kind"] == "container"} == {"cri"}
    assert_manifest_matches_disk(m)


def test_logship_loggen_subcommand_dispatches_with_leading_options(tmp_path: Path) -> None:
    from logship.cli import main

    assert main(["loggen", "-o", str(tmp_path), "-n", "10", "-r", "0", "-q"]) == 0
    assert orjson.loads((tmp_path / MANIFEST_NAME).read_bytes())["events"] == 10
    with pytest.raises(SystemExit) as exc:
        main(["loggen", "-o", str(tmp_path), "--format", "syslog"])
    assert exc.value.code == 2
