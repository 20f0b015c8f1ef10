"""The few ways the file storage touches the disk: whole files created atomically, lines appended."""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path
from types import TracebackType

from perfmon.adapters.filesystem.layout import DataDir
from perfmon.domain.errors import StorageUnavailable

_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
# Seconds a temporary file may live: far longer than any write (a compaction compresses a day in seconds).
TEMPORARY_LIFETIME = 3600.0


class storage_errors:  # noqa: N801 (used as a function: `with storage_errors("storing samples"):`)
    """Turn any OSError into StorageUnavailable: to the caller a failing disk is storage that is down.

    A class rather than a contextmanager generator: it wraps every request, and costs a third as much."""

    __slots__ = ("_action",)

    def __init__(self, action: str) -> None:
        self._action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if isinstance(error, OSError):
            # The reason only: the error's file name could show a session token. Whoever handles the
            # error logs it (the HTTP layer as a warning, `perfmon serve` as its one start-up line),
            # so not here.
            reason = error.strerror or type(error).__name__
            raise StorageUnavailable(f"file storage failed while {self._action}: {reason}") from error


def write_whole(fd: int, content: bytes) -> None:
    """Write the content in one call; a short write (the disk or a quota filled up) is an error."""
    if os.write(fd, content) != len(content):
        raise OSError(errno.ENOSPC, "short write")


def write_whole_at(fd: int, content: bytes, offset: int) -> None:
    """Write the content at the offset in one call; a short write is an error, as for write_whole."""
    if os.pwrite(fd, content, offset) != len(content):
        raise OSError(errno.ENOSPC, "short write")


def create_file(data_dir: DataDir, path: Path, content: bytes) -> None:
    """Create the file with the content; FileExistsError if it exists. Readers may see it half-written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        write_whole(fd, content)
        if data_dir.fsync:
            os.fsync(fd)
    except OSError:
        # Leave no stump behind: a failed create is no create.
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        os.close(fd)
    if data_dir.fsync:
        sync_directory(path.parent)


def publish_file(data_dir: DataDir, path: Path, content: bytes) -> None:
    """Create the file whole or not at all, even across a crash; FileExistsError if it exists."""
    temporary = data_dir.tmp / f"{uuid.uuid4().hex}.tmp"
    create_file(data_dir, temporary, content)
    try:
        # link() never replaces a file: of racing writers, in threads or processes, exactly one wins.
        os.link(temporary, path)
    finally:
        # A temp file left behind is litter, not a reason to fail a write that has happened.
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    if data_dir.fsync:
        sync_directory(path.parent)


def replace_file(data_dir: DataDir, path: Path, content: bytes) -> None:
    """Put the content in place of the file (or make it), whole or not at all, even across a crash."""
    temporary = data_dir.tmp / f"{uuid.uuid4().hex}.tmp"
    create_file(data_dir, temporary, content)
    try:
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if data_dir.fsync:
        sync_directory(path.parent)


def append_line(data_dir: DataDir, path: Path, line: bytes) -> None:
    """Append one short line, creating the file if needed; O_APPEND keeps racing lines whole."""
    try:
        fd = os.open(path, _APPEND)
        created = False
    except FileNotFoundError:
        fd = os.open(path, _APPEND | os.O_CREAT, 0o600)
        created = True
    try:
        write_whole(fd, line)
        if data_dir.fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if created and data_dir.fsync:
        sync_directory(path.parent)


def read_if_present(path: Path) -> bytes | None:
    """The file's content, or None when there is no such file in a folder that is there."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        require_folder_of(path)
        return None


def require_folder_of(path: Path) -> None:
    """After a FileNotFoundError for the path: raise an OSError too unless the folder that holds it is there.

    A vanished folder (an unmounted volume, a deleted data dir) is an outage, not a missing record.
    """
    os.stat(path.parent)


def sweep_temporary(data_dir: DataDir, now: float) -> int:
    """Remove the temporary files that a process killed mid-write left in tmp/ (a compaction's are a
    day's compressed samples), once older than TEMPORARY_LIFETIME seconds; return how many.

    By age, not all of them: another process on the data dir may be about to link or rename its own."""
    swept = 0
    for entry in os.scandir(data_dir.tmp):
        if entry.name.endswith((".tmp", ".probe")) and entry.stat().st_mtime < now - TEMPORARY_LIFETIME:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                swept += 1
    return swept


def sync_directory(folder: Path) -> None:
    """Make the folder's entries durable: fsync of a file does not cover its name."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
