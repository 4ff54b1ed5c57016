"""The summary of py-spy's collapsed stacks (benchmarks/profiling.py): pure parsing and counting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.profiling import parse_frame, read_samples, sample_summary

RAW = """\
<module> (/usr/lib/python3.11/runpy.py:198);run (/w/shipper/app.py:431);plain_run (/w/shipper/docker_runs.py:61) 30
<module> (/usr/lib/python3.11/runpy.py:198);run (/w/shipper/app.py:431);plain_run (/w/shipper/docker_runs.py:80) 10
<module> (/usr/lib/python3.11/runpy.py:198);run (/w/shipper/app.py:431);build_run (/w/shipper/event.py:272) 50
<module> (/usr/lib/python3.11/runpy.py:198);select (/usr/lib/python3.11/asyncio/base_events.py:1898) 10
not a stack line
"""


def test_frames_lose_their_checkout_prefix_but_keep_package_and_line() -> None:
    assert parse_frame("plain_run (/w/shipper/docker_runs.py:61)") == ("plain_run", "shipper/docker_runs.py", "61")
    assert parse_frame("select (/usr/lib/python3.11/asyncio/base_events.py:1898)") == (
        "select",
        "asyncio/base_events.py",
        "1898",
    )
    assert parse_frame("<module> (/usr/lib/python3.11/runpy.py:198)") == ("<module>", "runpy.py", "198")
    assert parse_frame("run (/v/.venv/lib/python3.11/site-packages/uvloop/__init__.py:109)") == (
        "run",
        "uvloop/__init__.py",
        "109",
    )
    assert parse_frame("_run_code (<frozen runpy>)") == ("_run_code", "<frozen runpy>", "")
    assert parse_frame("0x7ff8fd43c24a") == ("0x7ff8fd43c24a", "?", "")


def test_own_time_counts_the_innermost_frame_and_inclusive_time_every_frame_once() -> None:
    s = read_samples(RAW)
    assert s.total == 100
    assert s.own["plain_run (shipper/docker_runs.py)"] == 40
    assert s.lines["plain_run (shipper/docker_runs.py:80)"] == 10
    assert s.files["shipper/event.py"] == 50
    assert s.inclusive["run (shipper/app.py)"] == 90
    assert s.inclusive["<module> (runpy.py)"] == 100
    text = sample_summary(s, top=5)
    assert "100 samples" in text
    assert " 50.0%  build_run (shipper/event.py)" in text
    assert " 40.0%  plain_run (shipper/docker_runs.py)" in text


def test_no_samples_says_so() -> None:
    assert "no samples" in sample_summary(read_samples(""), top=5)


_NAMES = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)


@given(
    st.lists(
        st.tuples(st.lists(st.tuples(_NAMES, _NAMES, st.integers(1, 999)), min_size=1, max_size=5), st.integers(1, 50)),
        max_size=20,
    )
)
def test_every_sample_is_counted_once_as_own_time_and_at_most_once_per_function(
    stacks: list[tuple[list[tuple[str, str, int]], int]],
) -> None:
    lines = [";".join(f"{f} (/x/shipper/{p}.py:{n})" for f, p, n in frames) + f" {count}" for frames, count in stacks]
    raw = "\n".join(lines)
    s = read_samples(raw)
    assert s.total == sum(c for _, c in stacks)
    assert sum(s.own.values()) == sum(s.lines.values()) == sum(s.files.values()) == s.total
    assert all(n <= s.total for n in s.inclusive.values())
    for frames, count in stacks:
        for f, p, _ in frames:
            assert s.inclusive[f"{f} (shipper/{p}.py)"] >= count
