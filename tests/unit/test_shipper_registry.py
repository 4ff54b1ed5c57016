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


def test_retire_moves_the_entry_and_the_windows_in_flight_of_the_old_generation() -> None:
    c = Checkpoints()
    c.set_now("1:2", Position("/f", 0, 4, "old", "/f"), 1.0, size=100)
    w_old = c.open_window({"1:2": Position("/f", 60, 4, "old")})
    retired = c.retire("1:2", "old")
    assert retired == "1:2@old" and "1:2" not in c.entries
    c.set_now("1:2", Position("/f", 0, 2, "new", "/f"), 2.0, size=10)  # the new generation at offset 0
    w_new = c.open_window({"1:2": Position("/f", 10, 2, "new")})
    c.ack(w_new, 3.0)
    c.ack(w_old, 3.0)
    assert c.entries["1:2@old"].offset == 60 and c.entries["1:2@old"].fp_hash == "old"
    assert c.entries["1:2"].offset == 10 and c.entries["1:2"].fp_hash == "new"


def test_observe_grows_the_fingerprint_and_size_without_an_ack_and_finished_follows() -> None:
    c = Checkpoints()
    c.set_now("k", Position("/f", 0, 0, "e", "/f"), 1.0, size=0)
    assert not c.entries["k"].finished  # a live file may grow: never finished by its size alone
    c.observe("k", "/real/f", (1024, "full"), 5000, 2.0)
    e = c.entries["k"]
    assert (e.fp_len, e.fp_hash, e.size, e.real, e.offset) == (1024, "full", 5000, "/real/f", 0)
    assert not e.finished and c.changed
    c.ack(c.open_window({"k": Position("/f", 5000, 10, "short")}), 3.0)
    assert e.offset == 5000 and e.fp_len == 1024  # an ack never shrinks the fingerprint
    assert not e.finished
    c.complete("k", 5000)  # rotated away and read to its end
    assert e.finished and e.done
    assert Checkpoints.from_bytes(c.to_bytes()).entries["k"].finished
    c.give_up("k", 6000)
    assert e.offset == 6000


def test_a_version_1_registry_is_still_read() -> None:
    data = b'{"version": 1, "files": {"1:2": {"path": "/f", "offset": 7, "fp_len": 3, "fp": "x", "seen": 1.5}}}'
    e = Checkpoints.from_bytes(data).entries["1:2"]
    assert (e.path, e.offset, e.real, e.size) == ("/f", 7, "/f", -1) and not e.finished
    again = Checkpoints.from_bytes(Checkpoints.from_bytes(data).to_bytes()).entries["1:2"]
    assert again == e
