"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from logship.lumberjack import LumberjackServer


@pytest.fixture
async def servers() -> AsyncIterator[list[LumberjackServer]]:
    """The Lumberjack servers a test starts (it appends them), closed after the test."""
    started: list[LumberjackServer] = []
    yield started
    for s in started:
        await s.close(1.0)
