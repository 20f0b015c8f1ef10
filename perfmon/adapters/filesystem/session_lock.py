"""One lock per session over all of its files: writers exclusive, readers shared, across threads and
processes on one data dir.

flock() on `<session>/session.lock` queues other processes (and other open files of this one); a
thread lock per session queues this process's writers before they take it, so that a waiting writer
holds no open file. Readers take the shared lock only to take a consistent snapshot of what they will
read (samples.py), never while they parse, so ingest waits for no reader.

Every exclusive holder writes a new *holder tag* at the start of session.lock before it changes any
file; an appender that finds its own tag there knows that nobody else has held the lock since, and so
that the files are as it left them (open_sessions.py).
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from pathlib import Path

from perfmon.adapters.filesystem.files import require_folder_of, write_whole_at
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

    def exclusive(self, token: str) -> _Exclusive:
        """Hold the session's lock alone; yield its folder. UnknownSession when it has none (it was never
        started, or was deleted), OSError when the sessions folder itself is gone."""
        return _Exclusive(self._dir.session_folder(token), self.thread_lock(token))

    def shared(self, token: str) -> _Shared:
        """Hold the session's lock beside other readers; yield its folder, or None when it has none."""
        return _Shared(self._dir.session_folder(token))

    def thread_lock(self, token: str) -> threading.Lock:
        """The lock that queues this process's writers of the session (the same object while anyone holds
        a reference to it)."""
        with self._guard:
            lock = self._threads.get(token)
            if lock is None:
                lock = self._threads[token] = threading.Lock()
            return lock


class _Exclusive:
    """A session's lock held alone (a class, not a contextmanager generator: every append takes one)."""

    __slots__ = ("_folder", "_thread", "_fd")

    def __init__(self, folder: Path, thread: threading.Lock) -> None:
        self._folder = folder
        self._thread = thread
        self._fd = -1

    def __enter__(self) -> Path:
        self._thread.acquire()
        try:
            fd = open_lock(self._folder)
            if fd is None:
                raise UnknownSession()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                new_holder_tag(fd)
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            self._thread.release()
            raise
        self._fd = fd
        return self._folder

    def __exit__(self, *_: object) -> None:
        try:
            os.close(self._fd)  # releases the flock
        finally:
            self._thread.release()


class _Shared:
    """A session's lock held beside other readers; None for a session without a folder."""

    __slots__ = ("_folder", "_fd")

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._fd: int | None = None

    def __enter__(self) -> Path | None:
        fd = open_lock(self._folder)
        if fd is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self._folder

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:
            os.close(self._fd)


# Bytes of the holder tag, at the start of session.lock.
TAG_BYTES = 8


def new_holder_tag(fd: int) -> bytes:
    """Under the exclusive lock, before any file changes: write a new random holder tag into the open
    session.lock, and return it. Whoever remembered the previous tag now knows the files may change."""
    tag = os.urandom(TAG_BYTES)
    write_whole_at(fd, tag, 0)
    return tag


def open_lock(folder: Path) -> int | None:
    """The session's lock file, opened (and made, the first time); None when the session has no folder."""
    try:
        return os.open(f"{folder}/{SESSION_LOCK}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        # A vanished sessions folder (an unmounted volume) is an outage, not an unknown session.
        require_folder_of(folder)
        return None
