"""Change notification for the folders the trust config's files live in (Linux inotify).

The store still polls (every `--reload-interval`), but an edit, a `mv` over the file or a
ConfigMap volume's `..data` swap wakes it at once, so a revocation takes effect in milliseconds
rather than at the next poll. Where inotify cannot be had (another OS, the watch limit reached),
`FolderWatch` watches nothing and only the poll reloads; nothing depends on an event arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

__all__ = ["FolderWatch"]

log = logging.getLogger("signet.trust")

# <sys/inotify.h>: what changes a folder's files, and the flags for inotify_init1.
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x002, 0x004, 0x008
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x040, 0x080, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
)
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
# An editor writes in steps (truncate, write, rename); one reload after they settle.
_SETTLE = 0.05


class FolderWatch:
    def __init__(self) -> None:
        self._fd = -1
        self._watching: dict[Path, int] = {}
        self._changed = asyncio.Event()
        self._libc: ctypes.CDLL | None = None
        name = ctypes.util.find_library("c")
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(name, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd >= 0:
                self._libc, self._fd = libc, fd
                asyncio.get_running_loop().add_reader(fd, self._drain)
        if self._fd < 0:
            log.info("no inotify here: the trust config is reloaded by polling only")

    def __enter__(self) -> FolderWatch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def active(self) -> bool:
        return self._fd >= 0 and bool(self._watching)

    def watch(self, folders: Iterable[Path]) -> None:
        """Watch exactly these folders from now on (the config's files may have moved)."""
        if self._libc is None:
            return
        wanted = set(folders)
        for folder in set(self._watching) - wanted:
            self._libc.inotify_rm_watch(self._fd, self._watching.pop(folder))
        for folder in wanted:  # again each time: a folder deleted and made anew needs a new watch
            descriptor = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), _MASK)
            if descriptor < 0:
                log.warning(
                    "cannot watch %s (%s): changes there are found by polling",
                    folder,
                    os.strerror(ctypes.get_errno()),
                )
                continue
            self._watching[folder] = descriptor

    async def wait(self, at_most: float) -> bool:
        """True once something changed in a watched folder (settled); False after `at_most` s."""
        try:
            async with asyncio.timeout(at_most):
                await self._changed.wait()
        except TimeoutError:
            return False
        await asyncio.sleep(_SETTLE)
        self._changed.clear()
        return True

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(RuntimeError):  # the loop may be closing already
                asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._watching.clear()

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._fd, 65536):
                pass
        self._changed.set()
