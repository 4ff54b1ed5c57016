"""The reader's side of one Lumberjack connection, sans-IO (as h11's `Connection` is for an HTTP server).

Bytes go in (`receive`), complete windows come out, each with its payloads, size and the seq its
final ack must carry. Everything the server decides about a connection without I/O lives here: frame
decoding and its limits, which frames may follow which, the bytes one window may hold, the windows
admitted and not yet acked (`windows`, which also says when reading must pause), and the idle clock.
The asyncio server (`server.py`) only moves bytes, time and handler results in and out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from logship.lumberjack.codec import DataRun, Decoder, ProtocolError, WindowFrame
from logship.lumberjack.windows import WindowScheduler


@dataclass(frozen=True)
class ServerLimits:
    max_frame_bytes: int = 16 * 1024 * 1024
    max_window_size: int = 16384
    max_decompressed_bytes: int = 64 * 1024 * 1024
    # A connection must deliver its next whole window within this long of the previous ack (or of
    # connecting): this closes idle connections and slow-drip ones that trickle bytes to stay open.
    idle_timeout: float = 300.0
    keepalive_interval: float = 2.0
    # Bounds on what clients can make us hold: the payload bytes of one window (many frames, each
    # under max_frame_bytes, would otherwise add up to max_window_size * max_frame_bytes; a
    # connection also takes no new window while its unacked ones hold this much, so it holds at most
    # ~2x this) and the number of connections. 0 = unlimited.
    max_window_bytes: int = 128 * 1024 * 1024
    max_connections: int = 4096
    # Windows per connection handled at once (acked in order); with this many unacked, stop reading.
    max_windows_in_flight: int = 4


class ConnectionClosed(Exception):
    """Ends a connection with a reason (a stable code for metrics) and how loudly to log it."""

    def __init__(self, message: str, reason: str, level: int = logging.WARNING) -> None:
        super().__init__(message)
        self.reason = reason
        self.level = level


@dataclass(frozen=True)
class ReceivedWindow:
    payloads: list[bytes]
    nbytes: int  # payload bytes (what max_window_bytes bounds)
    last_seq: int  # the seq of its final ack


class ReaderConnection:
    def __init__(self, limits: ServerLimits, now: float) -> None:
        self.limits = limits
        self.windows = WindowScheduler(limits.max_windows_in_flight, limits.max_window_bytes)
        self._decoder = Decoder(
            limits.max_frame_bytes, limits.max_decompressed_bytes, limits.max_window_size, runs=True
        )
        self._expected = 0  # size of the window being received; 0 = between windows
        self._payloads: list[bytes] = []
        self._bytes = 0
        self.last_progress = now  # when the last window was received or acked

    @property
    def mid_window(self) -> bool:
        return bool(self._expected or self._decoder.buffered)

    def receive(self, data: bytes) -> list[ReceivedWindow]:
        """Bytes from the writer: the windows they complete, in order. Raises ProtocolError."""
        done: list[ReceivedWindow] = []
        limit = self.limits.max_window_bytes
        for frame in self._decoder.feed(data):
            if type(frame) is DataRun:
                payloads = frame.payloads
                room = self._expected - len(self._payloads)
                if len(payloads) > room:
                    self._overflow(payloads, room)
                nbytes = self._bytes + frame.nbytes
                if limit and nbytes > limit:
                    raise ProtocolError(f"window payloads exceed max_window_bytes {limit}", "window_too_large")
                if self._payloads:
                    self._payloads += payloads
                else:
                    self._payloads = payloads  # the run's own list: usually the whole window at once
                if len(payloads) == room:
                    done.append(ReceivedWindow(self._payloads, nbytes, frame.last_seq))
                    self._expected, self._payloads, nbytes = 0, [], 0
                self._bytes = nbytes
            elif type(frame) is WindowFrame:
                if self._expected:
                    raise ProtocolError(
                        f"new window before the previous one was complete "
                        f"({len(self._payloads)} of {self._expected} events)",
                        "unexpected_frame",
                    )
                self._expected = frame.size
            else:
                raise ProtocolError(f"unexpected frame {frame!r}", "unexpected_frame")
        return done

    def _overflow(self, payloads: list[bytes], room: int) -> None:
        """More data frames than the window has room for: the error the first one too many makes
        (unless the window's own frames already exceed max_window_bytes)."""
        limit = self.limits.max_window_bytes
        if room and limit and self._bytes + sum(map(len, payloads[:room])) > limit:
            raise ProtocolError(f"window payloads exceed max_window_bytes {limit}", "window_too_large")
        raise ProtocolError("data frame outside a window", "unexpected_frame")

    def admit(self, window: ReceivedWindow, now: float) -> int:
        """The window goes to the handler (only when `windows.has_room()`); its ticket for `windows`."""
        self.last_progress = now
        return self.windows.admit(window.last_seq, window.nbytes)

    def acked(self, now: float) -> None:
        """Final acks went out: progress for the idle clock."""
        self.last_progress = now

    def eof(self) -> None:
        """The writer closed its side. Raises ConnectionClosed if that cut a window short."""
        if self.mid_window:
            raise ConnectionClosed(
                f"peer closed mid-window ({len(self._payloads)} of {self._expected} events, "
                f"{self._decoder.buffered} bytes of a truncated frame); the window was not acked",
                "truncated_frame",
            )

    def read_deadline(self, now: float) -> float:
        """When waiting for more bytes must stop. The clock runs from the last window received or
        acked: a writer waiting for acks of windows still being handled has nothing to send, and is
        not idle."""
        return (now if self.windows.pending else self.last_progress) + self.limits.idle_timeout

    def check_idle(self, now: float) -> None:
        """A read reached its deadline: raises ConnectionClosed if the connection is really idle."""
        if self.read_deadline(now) > now:
            return
        timeout = self.limits.idle_timeout
        if self.mid_window:
            raise ConnectionClosed(
                f"window not complete within {timeout:g}s ({len(self._payloads)} of {self._expected} events, "
                f"{self._decoder.buffered} bytes of a frame)",
                "slow_window",
            )
        raise ConnectionClosed(f"idle for {timeout:g}s", "idle_timeout", logging.INFO)
