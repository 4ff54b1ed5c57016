"""Wake-ups for the reader: inotify where the kernel has it, polling otherwise.

Directories are watched, not files: a directory watch reports writes to every file in it, and
creations, renames and deletions that call for a rescan. Symlinked files are covered because the
directory of each symlink's target is watched too. Polling checks every open file on a short tick.
Both modes rescan the globs every `scan_interval` as a safety net (inotify queues can overflow).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence

log = logging.getLogger("logship.shipper.watch")

POLL_TICK = 0.25  # seconds between size checks of every open file in poll mode


class PollWatcher:
    mode = "poll"
    tick: float | None = POLL_TICK

    def update(self, dirs: set[str]) -> None:
        pass

    def close(self) -> None:
        pass


class InotifyWatcher:
    """Calls `on_change(realpath)` for a written file, `on_rescan(created)` when files appear or go
    (`created`: the paths that appeared, so a file gone again before the rescan is still known)."""

    mode = "inotify"
    tick: float | None = None

    def __init__(self, on_change: Callable[[str], None], on_rescan: Callable[[Sequence[str]], None]) -> None:
        from inotify_simple import INotify, flags

        self._flags = flags
        self._inotify = INotify(nonblocking=True)
        self._on_change = on_change
        self._on_rescan = on_rescan
        self._wds: dict[int, str] = {}
        self._dirs: set[str] = set()
        self._mask = (
            flags.MODIFY
            | flags.CREATE
            | flags.MOVED_TO
            | flags.MOVED_FROM
            | flags.DELETE
            | flags.DELETE_SELF
            | flags.MOVE_SELF
        )
        asyncio.get_running_loop().add_reader(self._inotify.fileno(), self._readable)

    def update(self, dirs: set[str]) -> None:
        for d in dirs - self._dirs:
            try:
                wd = self._inotify.add_watch(d, self._mask)
            except OSError as exc:
                log.warning("%s: cannot watch (%s); relying on the periodic rescan", d, exc)
                continue
            self._wds[wd] = d
            self._dirs.add(d)

    def _readable(self) -> None:
        try:
            events = self._inotify.read(timeout=0)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("inotify read failed: %s", exc)
            return
        rescan = False
        created: list[str] = []
        f = self._flags
        for ev in events:
            if ev.mask & f.Q_OVERFLOW:
                rescan = True
                continue
            d = self._wds.get(ev.wd)
            if ev.mask & f.IGNORED:
                if d is not None:
                    self._dirs.discard(d)
                    del self._wds[ev.wd]
                rescan = True
                continue
            if d is None:
                continue
            if ev.mask & f.MODIFY:
                self._on_change(os.path.join(d, ev.name))
            else:
                rescan = True
                if ev.mask & (f.CREATE | f.MOVED_TO) and ev.name:
                    created.append(os.path.join(d, ev.name))
        if rescan:
            self._on_rescan(created)

    def close(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self._inotify.fileno())
        except RuntimeError:
            pass
        self._inotify.close()


def make_watcher(
    mode: str, on_change: Callable[[str], None], on_rescan: Callable[[Sequence[str]], None]
) -> PollWatcher | InotifyWatcher:
    """`auto` uses inotify when the kernel offers it and falls back to polling."""
    if mode == "poll":
        return PollWatcher()
    try:
        return InotifyWatcher(on_change, on_rescan)
    except (OSError, ImportError, AttributeError) as exc:
        if mode == "inotify":
            raise RuntimeError(f"shipper.watch: inotify is not available here ({exc}); use watch: poll") from exc
        log.info("inotify not available (%s); polling files", exc)
        return PollWatcher()
