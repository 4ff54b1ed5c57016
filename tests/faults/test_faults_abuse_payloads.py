"""The abuse payloads are what they claim to be (checked with the protocol's own decoder)."""

from __future__ import annotations

import pytest

from logship.lumberjack.codec import Decoder, ProtocolError
from tests.faults import abuse


def _reason(data: bytes, **limits: int) -> str | None:
    try:
        Decoder(**limits).feed(data)
    except ProtocolError as exc:
        return exc.reason
    return None


def test_bomb_is_small_on_the_wire_and_stopped_at_the_limit() -> None:
    bomb = abuse.decompression_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    assert _reason(bomb, max_decompressed_bytes=64 * 1024 * 1024) == "decompressed_too_large"


@pytest.mark.parametrize("name", sorted(abuse.wrong_versions()))
def test_wrong_versions_are_protocol_errors(name: str) -> None:
    assert _reason(abuse.wrong_versions()[name]) is not None


def test_oversized_window_and_frame() -> None:
    assert _reason(abuse.oversized_window()) == "window_too_large"
    assert _reason(abuse.oversized_frame()) == "frame_too_large"


def test_truncated_frame_leaves_bytes_buffered_and_no_second_event() -> None:
    d = Decoder()
    frames = d.feed(abuse.truncated_frame())
    assert len(frames) == 2  # the window frame and the first data frame only
    assert d.buffered > 0


def test_random_bytes_are_rejected() -> None:
    assert _reason(abuse.random_bytes()) == "bad_version"
