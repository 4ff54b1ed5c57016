"""The fault harness itself: the TCP proxy forwards, cuts, pauses and refuses; the small filesystem fills."""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.proxy import TcpProxy
from tests.faults.smallfs import Filler, SmallFsUnavailable, small_fs


@pytest.fixture
def echo_port() -> Iterator[int]:
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy's cuts reset these
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def test_proxy_forwards_both_ways(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as c:
        payload = bytes(range(256)) * 1000
        c.sendall(payload)
        assert _recv_exact(c, len(payload)) == payload
        assert proxy.bytes_up == len(payload) and proxy.bytes_down == len(payload)


def test_proxy_cut_resets_open_connections(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as c:
        c.sendall(b"x")
        assert _recv_exact(c, 1) == b"x"
        assert proxy.cut() == 1
        c.settimeout(5)
        with pytest.raises(OSError) as info:
            c.sendall(b"y")
            if c.recv(1) == b"":
                raise ConnectionResetError(errno.ECONNRESET, "closed")
        assert isinstance(info.value, (ConnectionResetError, BrokenPipeError))
        # new connections still work after a cut
        with socket.create_connection(("127.0.0.1", proxy.port)) as c2:
            c2.sendall(b"z")
            assert _recv_exact(c2, 1) == b"z"


def test_proxy_cut_after_bytes_cuts_mid_stream(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as c:
        proxy.cut_after(10_000)
        c.settimeout(5)
        got = b""
        with pytest.raises(OSError):
            for _ in range(100):
                c.sendall(b"a" * 1000)
                got += c.recv(65536)
                if not got:
                    break
            raise AssertionError("connection was never cut")
        assert proxy.cuts == 1
        assert 0 < proxy.bytes_up < 100_000


def test_proxy_pause_holds_data_until_resume(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as c:
        c.sendall(b"before")
        assert _recv_exact(c, 6) == b"before"
        proxy.pause()
        c.sendall(b"during")
        c.settimeout(0.5)
        with pytest.raises(TimeoutError):
            c.recv(10)
        proxy.resume()
        c.settimeout(5)
        assert _recv_exact(c, 6) == b"during"


def test_proxy_refuse_aborts_new_connections(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy:
        proxy.refuse(True)
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            c.settimeout(5)
            try:
                data = c.recv(1)
            except ConnectionResetError:
                data = b""
            assert data == b""
        proxy.refuse(False)
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            c.sendall(b"ok")
            assert _recv_exact(c, 2) == b"ok"


def test_small_fs_fills_and_frees(tmp_path: Path) -> None:
    try:
        ctx = small_fs(tmp_path / "fs", "128k")
        fs = ctx.__enter__()
    except SmallFsUnavailable as exc:
        pytest.fail(f"cannot mount a small filesystem here: {exc}")
    try:
        filler = Filler(fs)
        filler.fill()
        assert Filler.free_bytes(fs) == 0
        with pytest.raises(OSError) as info, (fs / "x").open("wb", buffering=0) as f:
            f.write(b"y" * 4096)
        assert info.value.errno == errno.ENOSPC
        filler.release()
        time.sleep(0.05)
        assert Filler.free_bytes(fs) > 64 * 1024
        (fs / "x").write_bytes(b"y" * 4096)
    finally:
        ctx.__exit__(None, None, None)
