"""Real processes under measurement: start them, sample RSS and CPU with psutil, stop them.

Figures come from the operating system, never from the process itself: peak RSS is the highest
resident set size seen by a sampler thread (every 100 ms), CPU is user+system seconds of the process
and its children between two marks.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[1]


def runqueue_wait(pid: int) -> float:
    """Seconds the threads of `pid` spent waiting on a run queue (0.0 where schedstat is missing).

    /proc/PID/task/TID/schedstat holds: time on CPU, time waiting to run, timeslices (ns). On shared
    cores this separates "slow because busy" from "slow because another process had the core"."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
    except OSError:
        return 0.0
    return total / 1e9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


@dataclass
class Sample:
    t: float  # monotonic
    wall: float  # time.time(), to line up with the sinks' clocks
    rss: int
    cpu: float  # user + system seconds so far
    wait: float  # seconds its threads spent runnable but waiting for a CPU (Linux schedstat)


@dataclass
class Measured:
    """A running process, sampled until stopped."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    samples: list[Sample] = field(default_factory=list)
    _ps: psutil.Process | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _marks: dict[str, float] = field(default_factory=dict)
    metrics_port: int | None = None  # its /metrics endpoint, when it has one
    companions: list[subprocess.Popen[bytes]] = field(default_factory=list)  # e.g. its profiler: waited for at stop

    def start_sampling(self, interval: float = 0.1) -> None:
        self._ps = psutil.Process(self.popen.pid)
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        assert self._ps is not None
        while not self._stop.is_set():
            try:
                with self._ps.oneshot():
                    rss = self._ps.memory_info().rss
                    t = self._ps.cpu_times()
                wait = runqueue_wait(self._ps.pid)
                self.samples.append(Sample(time.monotonic(), time.time(), rss, t.user + t.system, wait))
            except psutil.Error:
                return
            self._stop.wait(interval)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds so far (the processes measured here fork no workers)."""
        assert self._ps is not None
        t = self._ps.cpu_times()
        return float(t.user + t.system)

    def wait_over(self, wall_start: float, wall_end: float) -> float:
        """Run-queue wait between two wall-clock times: time it was ready to run but had no core."""
        before = [s for s in self.samples if s.wall <= wall_start]
        after = [s for s in self.samples if s.wall >= wall_end]
        start = before[-1].wait if before else 0.0
        end = after[0].wait if after else (self.samples[-1].wait if self.samples else 0.0)
        return max(0.0, end - start)

    def cpu_over(self, wall_start: float, wall_end: float) -> float:
        """CPU seconds between two wall-clock times, from the samples just outside them (an upper bound
        by at most two sampling intervals: good for long runs, rough for sub-second ones)."""
        before = [s for s in self.samples if s.wall <= wall_start]
        after = [s for s in self.samples if s.wall >= wall_end]
        start = before[-1].cpu if before else 0.0
        end = after[0].cpu if after else (self.samples[-1].cpu if self.samples else 0.0)
        return max(0.0, end - start)

    def mark_cpu(self, label: str) -> float:
        value = self.cpu_seconds()
        self._marks[label] = value
        return value

    def cpu_between(self, start: str, end: str) -> float:
        return self._marks[end] - self._marks[start]

    def peak_rss(self, since: float | None = None, until: float | None = None) -> int:
        values = [s.rss for s in self.samples if (since is None or s.t >= since) and (until is None or s.t <= until)]
        return max(values, default=0)

    def rss_series(self, t0: float) -> list[tuple[float, int]]:
        return [(round(s.t - t0, 2), s.rss) for s in self.samples]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pause(self) -> None:
        os.kill(self.popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.popen.pid, signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        self._stop.set()
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        if self._thread is not None:
            self._thread.join(2)
        for companion in self.companions:
            try:
                companion.wait(30)  # a sampler writes its file once the process is gone
            except subprocess.TimeoutExpired:
                companion.kill()
        return self.popen.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    env: dict[str, str] | None = None,
    stdout_pipe: bool = False,
    cpu: str | None = None,
) -> Measured:
    """Start `argv` in `workdir`, its output in `<name>.log` (stdout piped instead if asked).

    With `cpu` (a `taskset -c` list such as "1"), the process and its threads may run on those cores
    only: a multi-threaded peer held to one core like the single-threaded shipper."""
    log_path = workdir / f"{name}.log"
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", cpu, *argv]
    log = open(log_path, "ab")  # handed to the child, closed here once it has it
    try:
        popen = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log if stdout_pipe else subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            # `benchmarks` is not an installed package: let children import it from the checkout
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
    finally:
        log.close()
    proc = Measured(name, popen, log_path)
    proc.start_sampling()
    return proc


def write_config(path: Path, section: str, body: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({section: body}, sort_keys=False))
    return path


def spawn_logship(
    side: str,
    config: dict[str, object],
    workdir: Path,
    name: str | None = None,
    profile_dir: Path | None = None,
    cpu: str | None = None,
    profiler: str = "sample",
) -> Measured:
    """`python -m logship shipper|aggregator -c FILE` with the config written to `workdir`.

    With `profile_dir`, the process is profiled into `<profile_dir>/<name>-N.<ext>`, written when it
    exits after SIGTERM; `python -m benchmarks.profiling DIR` summarises them. `profiler` "sample":
    py-spy samples it from outside (`.txt`, time in C counted to the Python line that called it, no
    slowdown of its own); "cprofile": it runs under cProfile (`.prof`, call counts, but every call is
    slowed, C calls most, and time spent waiting counts to the coroutine that waits).
    """
    name = name or side
    cfg = write_config(workdir / f"{name}.yml", side, config)
    argv = [PYTHON, "-m", "logship", side, "-c", str(cfg)]
    profile_path: Path | None = None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        ext = "txt" if profiler == "sample" else "prof"
        n = len(list(profile_dir.glob(f"{name}-*.{ext}")))
        profile_path = profile_dir / f"{name}-{n}.{ext}"
        if profiler != "sample":
            argv[1:2] = ["-m", "cProfile", "-o", str(profile_path), "-m"]
    # LOGSHIP_BENCH_CODE: another checkout's logship (e.g. the commit before a change), measured by this
    # checkout's benchmarks in the same run
    code = os.environ.get("LOGSHIP_BENCH_CODE")
    env = {"PYTHONPATH": f"{code}{os.pathsep}{ROOT}"} if code else None
    proc = spawn(name, argv, workdir, env=env, cpu=cpu)
    if profile_path is not None and profiler == "sample":
        proc.companions.append(start_sampler(proc.popen.pid, profile_path, workdir / f"{name}-py-spy.log"))
    return proc


def py_spy() -> str | None:
    """The py-spy executable (installed with the test extra), next to this Python or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_sampler(pid: int, out: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` until it exits, then writing collapsed stacks to `out` (one line per stack:
    frames `function (file:line)` joined by `;`, then the sample count). `--nonblocking`: the process is
    never paused to be read, so it runs at its own speed; the price is no C frames (py-spy's `--native`
    pauses it), so time in a C call counts to the Python line that made it."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("--profile: py-spy not found (pip install py-spy, part of the test extra)")
    argv = [exe, "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--full-filenames"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [*argv, "--format", "raw", "--output", str(out)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )


# The core an agent under test is pinned to in case a (`taskset -c`); the receivers run elsewhere.
AGENT_CPU = os.environ.get("LOGSHIP_BENCH_AGENT_CPU", str(max(0, (os.cpu_count() or 1) - 1)))


def other_cpus() -> str | None:
    """The cores this process may use other than AGENT_CPU, as a `taskset -c` list (None if none)."""
    agent = {int(c) for c in AGENT_CPU.split(",") if c.strip().isdigit()}
    rest = sorted(os.sched_getaffinity(0) - agent)
    return ",".join(str(c) for c in rest) or None


@contextlib.contextmanager
def open_files_limit(needed: int) -> Iterator[tuple[int, int]]:
    """RLIMIT_NOFILE of this process raised to at least `needed` while the block runs (the hard
    limit too where that is allowed, e.g. as root), restored afterwards; every process started
    meanwhile (file writers, agents, load clients) inherits it. Yields the (soft, hard) in force."""
    kind = resource.RLIMIT_NOFILE
    old = resource.getrlimit(kind)
    soft, hard = old
    unlimited = resource.RLIM_INFINITY
    if hard != unlimited and hard < needed:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, (soft, needed))
            hard = needed
    if soft != unlimited and soft < needed:
        soft = needed if hard == unlimited else min(needed, hard)
        resource.setrlimit(kind, (soft, hard))
    try:
        yield soft, hard
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, old)
