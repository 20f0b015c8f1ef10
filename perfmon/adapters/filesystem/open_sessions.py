"""The files of the sessions this process appends to, kept open between appends, with what it last
wrote to them (issue 14).

Opening, healing and closing each file of a session on every append cost more than the writes: an
agent's 12 metrics were some 80 system calls. Here a session's lock, journal, status file and segments
stay open after an append, with each segment's size and the time of its last sample, and the status
file's content; the next append is a handful of pwrite()s.

What keeps that exact with other processes on the data dir, and with maintenance: the *holder tag*
(session_lock.py). Every exclusive holder of a session's lock writes a new random tag at the start of
session.lock before it changes a file, unless the tag there is the one it wrote itself: that proves
nobody else has held the lock since, and so that the files are as it left them. Any other holder
(another process's append, a maintenance pass that rolled up, compacted or pruned, a writer killed
mid-write) has changed the tag, and what was remembered is dropped: the files are opened, and healed of
a torn tail, anew. A write that fails drops what was remembered too.

Each hold also checks, with one stat() of session.lock's path, that the session's folder is still the
one whose files are open: a session deleted, or a data dir moved away (an unmounted volume), is
UnknownSession or an outage, as when nothing was kept open.

The sessions are kept in least-recently-used order, up to a number of open files; closing a session's
files waits for no one (a session in use is passed over).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import resource
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import SESSION_LOCK
from perfmon.adapters.filesystem.session_lock import TAG_BYTES, SessionLocks, new_holder_tag, open_lock
from perfmon.domain.errors import UnknownSession
from perfmon.domain.model import SessionStatus

# Open files kept when the storage is built without a budget (tests, the CLI's one-off commands).
DEFAULT_OPEN_FILES = 256
# At most this many, whatever the descriptor limit allows.
MAX_OPEN_FILES = 1 << 16
# Descriptors left for everything else: the listening socket, logs, readers' files, per thread a few.
_RESERVED_FILES = 64
_RESERVED_FILES_PER_THREAD = 4


def kept_open_files(connection_limit: int, threads: int) -> int:
    """The open files to keep for appends: what the process's descriptor limit (RLIMIT_NOFILE, soft)
    leaves once every allowed connection and the reserve are counted, at least DEFAULT_OPEN_FILES / 4.
    An agent's session of 12 metrics keeps 15 open."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = MAX_OPEN_FILES * 4 if soft == resource.RLIM_INFINITY else soft
    left = limit - connection_limit - _RESERVED_FILES - _RESERVED_FILES_PER_THREAD * threads
    return max(DEFAULT_OPEN_FILES // 4, min(MAX_OPEN_FILES, left))


@dataclass(slots=True)
class Segment:
    """A segment kept open: its name relative to the session folder, and as this process left it."""

    name: str
    fd: int
    size: int
    # The time of its last line's sample: -inf when it has none, None when its last line is no sample.
    last: float | None


class OpenSession:
    """One session's files kept open, and what this process wrote to them. Used only under the session's
    lock (both this process's thread lock and the flock), by one thread at a time."""

    __slots__ = (
        "token",
        "folder",
        "thread",
        "lock_fd",
        "lock_id",
        "tag",
        "known",
        "journal_fd",
        "status_fd",
        "status_content",
        "status",
        "segments",
        "counted",
    )

    def __init__(self, token: str, folder: Path, thread: threading.Lock, lock_fd: int) -> None:
        self.token = token
        self.folder = folder
        self.thread = thread
        self.lock_fd = lock_fd
        stat = os.fstat(lock_fd)
        self.lock_id = (stat.st_dev, stat.st_ino)
        # The holder tag this process wrote last; None once what it remembered is dropped.
        self.tag: bytes | None = None
        # True during a hold when the files are as this process left them: what follows is theirs.
        self.known = False
        self.journal_fd: int | None = None
        # The status file, open (None when the session has none), and what it holds; status_content
        # None: not remembered.
        self.status_fd: int | None = None
        self.status_content: bytes | None = None
        self.status: SessionStatus | None = None
        # (metric, day name) -> the day's segment that takes its appends (plain, or late once compacted).
        self.segments: dict[tuple[str, str], Segment] = {}
        # Open files counted in the budget (OpenSessions).
        self.counted = 1

    def files(self) -> int:
        """The descriptors it holds open."""
        return 1 + (self.journal_fd is not None) + (self.status_fd is not None) + len(self.segments)

    def remember_status(self, fd: int | None, content: bytes, status: SessionStatus | None) -> None:
        """Keep the status file open (or, with None, the fact that there is none) and what it holds."""
        if self.status_fd is not None and self.status_fd != fd:
            os.close(self.status_fd)
        self.status_fd, self.status_content, self.status = fd, content, status

    def forget(self) -> None:
        """Drop what was remembered and close the files but the lock: the next hold opens them anew."""
        self.tag = None
        self.known = False
        fds = [segment.fd for segment in self.segments.values()]
        fds += [fd for fd in (self.journal_fd, self.status_fd) if fd is not None]
        self.segments.clear()
        self.journal_fd = self.status_fd = None
        self.status_content = self.status = None
        for fd in fds:
            os.close(fd)

    def close(self) -> None:
        """Close every file, the lock's too; closing again does nothing (a descriptor is closed once:
        its number may be another file's by then)."""
        self.forget()
        if self.lock_fd >= 0:
            fd, self.lock_fd = self.lock_fd, -1
            os.close(fd)

    def is_at_its_path(self) -> bool:
        """True when session.lock's path still names the open lock file (one stat())."""
        try:
            stat = os.stat(f"{self.folder}/{SESSION_LOCK}")
        except FileNotFoundError:
            return False
        return (stat.st_dev, stat.st_ino) == self.lock_id


class OpenSessions:
    """The sessions whose files this process keeps open, least recently used first, up to `max_files`."""

    def __init__(self, data_dir: DataDir, locks: SessionLocks, max_files: int = DEFAULT_OPEN_FILES) -> None:
        self._dir = data_dir
        self._locks = locks
        self._max_files = max_files
        self._sessions: OrderedDict[str, OpenSession] = OrderedDict()
        self._files = 0
        self._guard = threading.Lock()

    def holding(self, token: str) -> Holding:
        """Hold the session's exclusive lock (across threads and processes) with its open files: `known`
        says whether they are as this process left them. UnknownSession when the session has no folder,
        OSError when the sessions folder itself is gone (session_lock.py)."""
        return Holding(self, token)

    @property
    def open_files(self) -> int:
        """The descriptors kept open now."""
        with self._guard:
            return self._files

    def close(self) -> None:
        """Close every kept file (the storage is closing; sessions in use are waited for)."""
        with self._guard:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._files = 0
        for session in sessions:
            with session.thread:
                session.close()

    def _open(self, token: str, thread: threading.Lock) -> OpenSession:
        """Under the thread lock: the session kept open, opened now if it was not (or was moved)."""
        with self._guard:
            session = self._sessions.get(token)
        if session is not None:
            if session.is_at_its_path():
                return session
            self._drop(session)
        folder = self._dir.session_folder(token)
        fd = open_lock(folder)
        if fd is None:
            raise UnknownSession()
        try:
            session = OpenSession(token, folder, thread, fd)
        except BaseException:
            os.close(fd)
            raise
        with self._guard:
            self._sessions[token] = session
            self._files += session.counted
        return session

    def _drop(self, session: OpenSession) -> None:
        """Under the session's thread lock: stop keeping it."""
        with self._guard:
            if self._sessions.get(session.token) is session:
                del self._sessions[session.token]
                self._files -= session.counted
        session.close()

    def _used(self, session: OpenSession) -> None:
        """Under the session's thread lock, after a hold: count its files, then close the least recently
        used sessions' past the budget."""
        with self._guard:
            if self._sessions.get(session.token) is not session:
                return
            files = session.files()
            self._files += files - session.counted
            session.counted = files
            self._sessions.move_to_end(session.token)
            if self._files > self._max_files:
                self._close_least_recently_used(session)

    def _close_least_recently_used(self, session: OpenSession) -> None:
        """Under the guard: close sessions' files, least recently used first, until within the budget."""
        # The least recently used few: a session in use is rare among them.
        for other in list(itertools.islice(self._sessions.values(), 64)):
            if self._files <= self._max_files:
                break
            # A session in use (or being dropped by its own thread) is passed over, never waited for.
            if other is session or not other.thread.acquire(blocking=False):
                continue
            try:
                del self._sessions[other.token]
                self._files -= other.counted
                other.close()
            finally:
                other.thread.release()


class Holding:
    """A session's exclusive lock held with its open files (a class, not a generator: every append)."""

    __slots__ = ("_sessions", "_token", "_thread", "_session")

    def __init__(self, sessions: OpenSessions, token: str) -> None:
        self._sessions = sessions
        self._token = token
        self._thread = sessions._locks.thread_lock(token)
        self._session: OpenSession | None = None

    def __enter__(self) -> OpenSession:
        self._thread.acquire()
        try:
            session = self._sessions._open(self._token, self._thread)
            fcntl.flock(session.lock_fd, fcntl.LOCK_EX)
            try:
                if session.tag is not None and os.pread(session.lock_fd, TAG_BYTES, 0) == session.tag:
                    session.known = True
                else:
                    session.forget()
                    session.tag = new_holder_tag(session.lock_fd)
            except BaseException:
                fcntl.flock(session.lock_fd, fcntl.LOCK_UN)
                raise
        except BaseException:
            self._thread.release()
            raise
        self._session = session
        return session

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        session = self._session
        assert session is not None
        try:
            try:
                if error is not None:
                    session.forget()  # a write that failed left the files as the journal put them back
            finally:
                session.known = False
                fcntl.flock(session.lock_fd, fcntl.LOCK_UN)
            self._sessions._used(session)
        finally:
            self._thread.release()
