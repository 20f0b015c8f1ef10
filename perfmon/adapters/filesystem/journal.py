"""A per-session undo journal, so that a write touching several files of a session is all or nothing.

A write of many lines is not atomic, and a batch may touch many files (a segment per metric and day; a
pass of maintenance its rollup files): a `kill -9` or a power cut in the middle can leave some of them
changed, each with whole lines, with nothing to tell them from acknowledged data. Before such a write,
the writer records in `<session>/session.journal` how to undo it, file by file; after it, the journal
is emptied (kept, not removed: making and removing a file costs more than the write it guards). A
journal that is not empty names a write that never finished: readers see each file as the journal says
it was before, and the next writer (under the session's exclusive lock, so never while the write's own
writer is at work) puts the files back.

One line per file, in the order of the write: `<name>,<keep>,<hex>`. The name is relative to the
session folder (a folder's ends with `/`); the write kept the file's first `keep` bytes and replaced
what followed them, the bytes `<hex>` (none for an append); `keep` -1 says the write created it. A line
without its newline was torn before any file was touched (the writes start after the journal's write
returned): it is ignored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perfmon.adapters.filesystem.files import sync_directory, write_whole_at
from perfmon.adapters.filesystem.series_files import JOURNAL


@dataclass(frozen=True)
class Undo:
    """How to undo a write to one file: keep its first `keep` bytes (-1: remove the file), then put back
    `replaced`."""

    name: str
    keep: int
    replaced: bytes = b""

    def committed(self, content: bytes) -> bytes:
        """What the file held before the unfinished write, given what it holds now."""
        return b"" if self.keep < 0 else content[: self.keep] + self.replaced

    def line(self) -> bytes:
        return f"{self.name},{self.keep},{self.replaced.hex()}\n".encode()


def opened(folder: Path, fsync: bool) -> int:
    """The session's journal opened for writing, made (durably, with fsync) if it is not there yet."""
    path = f"{folder}/{JOURNAL}"
    try:
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if fsync:
        try:
            sync_directory(folder)
        except BaseException:
            os.close(fd)
            raise
    return fd


def begin(folder: Path, undos: Sequence[Undo], fsync: bool, kept: int | None = None) -> int:
    """Record how to undo a write that is about to start, durably first with fsync; return the open
    journal, for end(). `kept`: the journal already open (open_sessions.py), which end() leaves open."""
    fd = opened(folder, fsync) if kept is None else kept
    try:
        # The journal is empty (roll_back() empties what a crash left): the record starts at 0.
        write_whole_at(fd, b"".join(undo.line() for undo in undos), 0)
        if fsync:
            # The journal must be on disk before any byte of the write can be.
            os.fsync(fd)
    except BaseException:
        if kept is None:
            os.close(fd)
        raise
    return fd


def end(journal: int, fsync: bool, close: bool = True) -> None:
    """The write is whole: forget how to undo it (durably, with fsync, before the caller answers)."""
    try:
        os.ftruncate(journal, 0)
        if fsync:
            os.fsync(journal)
    finally:
        if close:
            os.close(journal)


def unfinished(folder: Path) -> dict[str, Undo]:
    """How to undo the session's unfinished write, by file name; empty when no write is unfinished."""
    return {undo.name: undo for undo in _read(folder) or ()}


def roll_back(folder: Path, fsync: bool) -> None:
    """Under the session's exclusive lock: undo what an unfinished write did, and forget it."""
    undos = _read(folder)
    if undos is None:
        return
    # Last first: a folder the write created is empty again once its files are gone.
    for undo in reversed(undos):
        undo_one(folder, undo, fsync)
    end(os.open(f"{folder}/{JOURNAL}", os.O_WRONLY | os.O_CLOEXEC), fsync)


def undo_one(folder: Path, undo: Undo, fsync: bool) -> None:
    """Put one file back as the undo record says it was."""
    path = folder / undo.name
    try:
        if undo.keep < 0:
            os.rmdir(path) if undo.name.endswith("/") else os.unlink(path)
            return
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # the write never got to it
    try:
        os.ftruncate(fd, undo.keep)
        if undo.replaced:
            write_whole_at(fd, undo.replaced, undo.keep)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _read(folder: Path) -> list[Undo] | None:
    path = f"{folder}/{JOURNAL}"
    try:
        # Every append and read looks: a stat answers the usual case, an empty journal, for a third
        # of an open, read and close.
        if os.stat(path).st_size == 0:
            return None
        with open(path, "rb") as file:
            record = file.read()
    except FileNotFoundError:
        return None
    if not record:
        return None
    undos = (_parse(line) for line in record.split(b"\n")[:-1])
    return [undo for undo in undos if undo is not None]


def _parse(line: bytes) -> Undo | None:
    try:
        name, keep, replaced = line.decode("ascii").split(",")
        return Undo(name, int(keep), bytes.fromhex(replaced))
    except ValueError:
        return None
