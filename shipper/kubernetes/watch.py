"""List, then watch from the list's resourceVersion; relist on 410 Gone; back off on errors.

The calls themselves sit behind `ListWatchApi` (see client.py), so this loop is tested with a scripted
API as well as against a real kube-apiserver. Bookmarks only move the resourceVersion forward, so a
watch that sees no changes for a long time still resumes without a relist. A watch request that the
server ends (its timeout) is resumed from the last resourceVersion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from logship.backoff import Backoff

log = logging.getLogger("logship.shipper.kubernetes")

Obj = Mapping[str, Any]


class ApiError(Exception):
    """An API call that failed; `status` is the HTTP status (0: no answer at all)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


class Gone(ApiError):
    """410: the resourceVersion is older than what the server keeps; list again."""

    def __init__(self, message: str = "resourceVersion too old") -> None:
        super().__init__(410, message)


class ListWatchApi(Protocol):
    async def list(self, kind: str) -> tuple[list[Obj], str]:
        """All objects of `kind` (for pods: of this node) and the list's resourceVersion."""
        ...

    def watch(self, kind: str, resource_version: str, server_timeout: float) -> AsyncIterator[tuple[str, Obj]]:
        """Events `(type, object)` after `resource_version`, with bookmarks, for at most `server_timeout` s."""
        ...


class Sink(Protocol):
    def replace(self, kind: str, items: list[Obj], now: float) -> None: ...

    def apply(self, kind: str, type_: str, obj: Obj, now: float) -> None: ...


def _rv(obj: Obj) -> str | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return rv if isinstance(rv, str) and rv else None


class ListWatch:
    """One kind's list+watch loop; `run()` goes on until cancelled."""

    def __init__(
        self,
        api: ListWatchApi,
        kind: str,
        sink: Sink,
        *,
        timeout: float,
        backoff: Backoff,
        on_state: Callable[[str, bool, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.api = api
        self.kind = kind
        self.sink = sink
        self.timeout = timeout
        self.backoff = backoff
        self.resource_version: str | None = None
        self.up = False  # the last call worked
        self.lists = 0
        self.relists_gone = 0
        self.errors = 0
        self._on_state = on_state
        self._clock = clock
        self._sleep = sleep
        self._last_error = ""

    def _state(self, up: bool, reason: str) -> None:
        changed = up != self.up or (not up and reason != self._last_error)
        self.up = up
        self._last_error = "" if up else reason
        if changed and self._on_state is not None:
            self._on_state(self.kind, up, reason)

    async def run(self) -> None:
        while True:
            await self.step()

    async def step(self) -> None:
        """One list (if needed) and one watch request, or one failure and its backoff."""
        try:
            if self.resource_version is None:
                items, rv = await self.api.list(self.kind)
                self.sink.replace(self.kind, items, self._clock())
                self.resource_version = rv
                self.lists += 1
                self._state(True, "listed")
            async for type_, obj in self.api.watch(self.kind, self.resource_version, self.timeout):
                if type_ == "ERROR":
                    code = obj.get("code")
                    message = str(obj.get("message") or obj)
                    if code == 410:
                        raise Gone(message)
                    raise ApiError(int(code) if isinstance(code, int) else 0, message)
                obj_rv = _rv(obj)
                if type_ != "BOOKMARK":
                    self.sink.apply(self.kind, type_, obj, self._clock())
                if obj_rv is not None:
                    self.resource_version = obj_rv
                if not self.up:
                    self._state(True, "watching")
                self.backoff.reset()
            self.backoff.reset()
        except Gone as exc:
            # what we knew is too old to resume from: list again at once, without backing off
            self.relists_gone += 1
            self.resource_version = None
            log.info("kubernetes %s watch: %s; listing again", self.kind, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of the API or transport: retry, never crash
            self.errors += 1
            reason = str(exc) or type(exc).__name__
            self._state(False, reason)
            await self._sleep(self.backoff.next())
