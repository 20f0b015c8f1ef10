"""One lock per session over all of its files: writers exclusive, readers shared, across threads and
processes on one data dir.

flock() on `<session>/session.lock` queues other processes (and other open files of this one); a
thread lock per session queues this process's writers before they take it, so that a waiting writer
holds no open file. Readers take the shared lock only to take a consistent snapshot of what they will
read (samples.py), never while they parse, so ingest waits for no reader.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from perfmon.adapters.filesystem.files import require_folder_of
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import SESSION_LOCK
from perfmon.domain.errors import UnknownSession


class SessionLocks:
    """The locks of the sessions of one data dir."""

    def __init__(self, data_dir: DataDir) -> None:
        self._dir = data_dir
        # One lock per session being written to; weak values, so idle sessions cost no memory.
        self._threads: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def exclusive(self, token: str) -> Iterator[Path]:
        """Hold the session's lock alone; yield its folder. UnknownSession when it has none (it was never
        started, or was deleted), OSError when the sessions folder itself is gone."""
        folder = self._dir.session_folder(token)
        with self._thread_lock(token):
            fd = _open_lock(folder)
            if fd is None:
                raise UnknownSession()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield folder
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def shared(self, token: str) -> Iterator[Path | None]:
        """Hold the session's lock beside other readers; yield its folder, or None when it has none."""
        folder = self._dir.session_folder(token)
        fd = _open_lock(folder)
        if fd is None:
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield folder
        finally:
            os.close(fd)

    def _thread_lock(self, token: str) -> threading.Lock:
        with self._guard:
            lock = self._threads.get(token)
            if lock is None:
                lock = self._threads[token] = threading.Lock()
            return lock


def _open_lock(folder: Path) -> int | None:
    """The session's lock file, opened (and made, the first time); None when the session has no folder."""
    try:
        return os.open(f"{folder}/{SESSION_LOCK}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        # A vanished sessions folder (an unmounted volume) is an outage, not an unknown session.
        require_folder_of(folder)
        return None
