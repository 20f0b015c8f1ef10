"""A one-entry rollback journal per samples file, so that a batch is stored whole or not at all.

A write of many lines is not atomic: a `kill -9` (or a power cut) in the middle of it can leave the
first lines of a batch in the file, each of them whole, with nothing to tell them from acknowledged
samples. Before such a write the appender records the file's size in `sessions/<token>.pending`; after
it, the record is removed. A record that is still there names a batch that never finished: readers cut
the file at the recorded size, and the next appender truncates the file back to it (under the
exclusive lock, so never while the batch's own writer is still at work).

A record is `<size>\\n`; one without its newline was torn before the batch's first byte was written
(the data write starts only after the record's write returned) and is ignored.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from perfmon.adapters.filesystem.files import sync_directory, write_whole


def begin_batch(pending: Path, size: int, fsync: bool) -> None:
    """Record that a batch is about to be appended to a samples file of `size` bytes."""
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        write_whole(fd, f"{size}\n".encode("ascii"))
        if fsync:
            # The record must be on disk before any line of the batch can be.
            os.fsync(fd)
    finally:
        os.close(fd)
    if fsync:
        sync_directory(pending.parent)


def end_batch(pending: Path, fsync: bool) -> None:
    """The batch is whole in the file: forget the record (durably, with fsync, before the answer)."""
    os.unlink(pending)
    if fsync:
        sync_directory(pending.parent)


def unfinished_batch_start(pending: Path) -> int | None:
    """The size of the samples file before an unfinished batch, or None when no batch is unfinished."""
    record = _read_record(pending)
    return None if record is None else _recorded_size(record)


def roll_back_unfinished_batch(fd: int, pending: Path, fsync: bool) -> None:
    """Under the samples file's exclusive lock: cut off what an unfinished batch left, and forget it."""
    record = _read_record(pending)
    if record is None:
        return
    start = _recorded_size(record)
    if start is not None and start < os.fstat(fd).st_size:
        os.ftruncate(fd, start)
        if fsync:
            os.fsync(fd)
    with contextlib.suppress(FileNotFoundError):
        end_batch(pending, fsync)


def _read_record(pending: Path) -> bytes | None:
    try:
        return pending.read_bytes()
    except FileNotFoundError:
        return None


def _recorded_size(record: bytes) -> int | None:
    # Torn records (no newline) name no batch: its first byte had not been written yet.
    if not record.endswith(b"\n"):
        return None
    try:
        return int(record)
    except ValueError:
        return None
