"""The file storage as a whole: one data dir and the repositories built over it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from perfmon.adapters.filesystem import upgrade
from perfmon.adapters.filesystem.changes import ChangeMark
from perfmon.adapters.filesystem.files import create_file, storage_errors
from perfmon.adapters.filesystem.keys import FileKeyRepository
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.open_sessions import DEFAULT_OPEN_FILES
from perfmon.adapters.filesystem.samples import FileSampleRepository
from perfmon.adapters.filesystem.sessions import CACHED_SESSIONS, FileSessionRepository
from perfmon.adapters.filesystem.users import FileUserRepository
from perfmon.adapters.session_cache import SessionCache
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.model import Session


class FileStorage:
    """Owns the data dir (creating its folders, upgrading an earlier release's layout) and gives out its
    user, session, sample and key repositories; `samples` is also the storage's HistoryMaintenance.
    `open_files`: how many files the appends may keep open between requests (open_sessions.py).

    The sessions and keys share one change mark and one SessionCache: a revocation through `keys` drops
    the cache that `sessions` reads (PROTOCOL.md part 4)."""

    def __init__(self, data_dir: Path, fsync: bool, open_files: int = DEFAULT_OPEN_FILES) -> None:
        with storage_errors("creating the data dir"):
            self._dir = DataDir(data_dir, fsync)
        with storage_errors("upgrading the data dir"):
            upgrade.upgrade(self._dir)
        changes = ChangeMark(self._dir)
        cache: SessionCache[Session] = SessionCache(changes.read, CACHED_SESSIONS)
        self.users = FileUserRepository(self._dir)
        self.sessions = FileSessionRepository(self._dir, cache, changes)
        self.samples = FileSampleRepository(self._dir, open_files)
        self.keys = FileKeyRepository(self._dir, cache, changes)

    def check(self) -> None:
        """Raise StorageUnavailable unless serving can write: a file can be created in each folder that
        registering, logging in and posting write to, and the disk has room (GET /readyz).

        Not keys/ nor closed/: making keys and logging out are rare, and a probe there would move the
        change mark (changes.py), making every process read its sessions again at each readiness check."""
        with storage_errors("checking the data dir"):
            for folder in (self._dir.users, self._dir.sessions, self._dir.tmp):
                probe = folder / f"{uuid.uuid4().hex}.probe"
                create_file(self._dir, probe, b"")
                os.unlink(probe)
            room = os.statvfs(self._dir.root)
        if room.f_bavail == 0:
            raise StorageUnavailable("the data dir's disk is full")
