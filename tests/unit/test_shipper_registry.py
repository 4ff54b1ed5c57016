"""Checkpoint bookkeeping: in-order advance, cleaning, atomic persistence."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipper.registry import Checkpoints, CorruptRegistry, Position, RegistryFile


def pos(offset: int, path: str = "/f") -> Position:
    return Position(path, offset, 10, "abc")


def test_out_of_order_ack_waits_for_earlier_window() -> None:
    c = Checkpoints()
    w1 = c.open_window({"a": pos(100)})
    w2 = c.open_window({"a": pos(200), "b": pos(50, "/g")})
    c.ack(w2, now=1.0)
    assert c.entries == {}  # w1 still unacked: nothing moves
    c.ack(w1, now=2.0)
    assert c.entries["a"].offset == 200 and c.entries["b"].offset == 50
    assert c.changed and c.pending_windows == 0


@given(st.permutations(list(range(8))))
def test_any_ack_order_never_passes_unacked_window(order: list[int]) -> None:
    c = Checkpoints()
    wids = [c.open_window({"f": pos((i + 1) * 10)}) for i in range(8)]
    acked: set[int] = set()
    for i in order:
        c.ack(wids[i], 0.0)
        acked.add(i)
        contiguous = 0
        while contiguous in acked:
            contiguous += 1
        got = c.entries["f"].offset if "f" in c.entries else 0
        assert got == contiguous * 10


def test_clean_drops_files_gone_long_enough(tmp_path: Path) -> None:
    c = Checkpoints()
    c.ack(c.open_window({"a": pos(1), "b": pos(2)}), now=0.0)
    c.touch(["a"], now=100.0)
    assert c.clean(now=150.0, clean_after=60.0) == ["b"]
    assert list(c.entries) == ["a"]


def test_save_load_roundtrip_and_atomic(tmp_path: Path) -> None:
    f = RegistryFile(tmp_path / "sub" / "registry.json")
    c = Checkpoints()
    c.ack(c.open_window({"1:2": pos(42)}), now=5.0)
    f.save(c)
    assert not c.changed
    assert not (tmp_path / "sub" / "registry.json.tmp").exists()
    loaded = f.load()
    assert loaded.entries == c.entries


def test_corrupt_registry_is_set_aside(tmp_path: Path) -> None:
    p = tmp_path / "registry.json"
    p.write_bytes(b"{not json")
    with pytest.raises(CorruptRegistry):
        RegistryFile(p).load()
    assert (tmp_path / "registry.json.corrupt").exists()
    assert RegistryFile(p).load().entries == {}


def test_save_error_keeps_state(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    f = RegistryFile(ro / "registry.json")
    c = Checkpoints()
    c.ack(c.open_window({"k": pos(7)}), now=0.0)
    os.chmod(ro, 0o500)
    try:
        if os.geteuid() == 0:
            # root ignores permissions: use a path under a regular file to get an OSError instead
            f = RegistryFile(tmp_path / "afile" / "registry.json")
            (tmp_path / "afile").write_text("x")
        with pytest.raises(OSError) as info:
            f.save(c)
        assert info.value.errno in (errno.EACCES, errno.ENOTDIR, errno.EEXIST)
        assert c.changed and c.entries["k"].offset == 7
    finally:
        os.chmod(ro, 0o700)
