"""Samples as a `cpu,time` CSV per session: appended whole under a lock, read back tolerating torn tails."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import threading
import weakref
from collections.abc import Sequence

from perfmon.adapters.filesystem import journal
from perfmon.adapters.filesystem.files import require_folder_of, storage_errors, write_whole
from perfmon.adapters.filesystem.layout import SAMPLES_HEADER, DataDir
from perfmon.domain.downsampling import downsample, summarize
from perfmon.domain.errors import InvalidInput, UnknownSession
from perfmon.domain.model import MAX_TIMESTAMP, Bucket, CpuSample, SampleSeries, SampleSummary, TimeRange
from perfmon.domain.ports import SampleRepository

logger = logging.getLogger(__name__)

_HEADER_LINE = SAMPLES_HEADER.rstrip(b"\n")
# How far back a read looks at a time for the last newline: one read covers any real torn tail.
_TAIL_CHUNK = 4096


class FileSampleRepository(SampleRepository):
    """Samples in `sessions/<token>.csv`, which exists from the start of its session (sessions.py)."""

    def __init__(self, data_dir: DataDir) -> None:
        self._dir = data_dir
        # One lock per session being written to; weak values, so idle sessions cost no memory.
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()
        self._warned_about: set[str] = set()

    def append(self, token: str, samples: Sequence[CpuSample]) -> None:
        # One buffer, one write: a batch lands whole, and never interleaves with another.
        lines = b"".join(f"{sample.cpu!r},{sample.taken_at!r}\n".encode() for sample in samples)
        if not lines:
            return
        path = self._dir.session_samples(token)
        # The thread lock queues this process's writers; flock() queues other processes on the data dir.
        # flock() is also what makes healing safe: unlocked, another's write in progress looks torn.
        with storage_errors("storing samples"), self._lock_for(token):
            # No O_CREAT: an unknown token fails here instead of leaving a file behind.
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                # Every session is started with its file (sessions.py), so none means no session.
                require_folder_of(path)
                raise UnknownSession() from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._append_locked(fd, token, lines, is_batch=len(samples) > 1)
            finally:
                os.close(fd)

    def between(self, token: str, time_range: TimeRange) -> SampleSeries:
        return self._stored(token).within(time_range)

    def buckets(self, token: str, time_range: TimeRange, step: float) -> list[Bucket]:
        return downsample(self.between(token, time_range), step)

    def summaries(self, tokens: Sequence[str]) -> dict[str, SampleSummary]:
        # A file has no index: one read of each session's file, as between() does.
        return {token: summarize(self._stored(token)) for token in tokens}

    def _stored(self, token: str) -> SampleSeries:
        """The session's samples in arrival order; none when it has no file (an unknown session)."""
        path = self._dir.session_samples(token)
        with storage_errors("reading samples"):
            try:
                with open(path, "rb") as file:
                    # Shared lock: an append in progress is seen whole or not at all.
                    fcntl.flock(file.fileno(), fcntl.LOCK_SH)
                    content = file.read()
                    # A batch cut short by a crash is not there until the next append removes it.
                    unfinished_start = journal.unfinished_batch_start(self._dir.session_pending_batch(token))
            except FileNotFoundError:
                require_folder_of(path)
                return SampleSeries([], [])
        if unfinished_start is not None:
            content = content[:unfinished_start]
        return self._parse(token, content)

    def _lock_for(self, token: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(token)
            if lock is None:
                lock = self._locks[token] = threading.Lock()
            return lock

    def _append_locked(self, fd: int, token: str, lines: bytes, is_batch: bool) -> None:
        pending = self._dir.session_pending_batch(token)
        journal.roll_back_unfinished_batch(fd, pending, self._dir.fsync)
        end = _heal_torn_tail(fd)
        # An empty file (emptied by hand, or a power cut before its header reached the disk) gets its header.
        content = lines if end else SAMPLES_HEADER + lines
        # One line needs no journal: cut short, it is a torn last line, which healing removes. Several
        # lines cut short leave whole lines of a batch that must not count (see journal.py).
        if is_batch:
            journal.begin_batch(pending, end, self._dir.fsync)
        try:
            write_whole(fd, content)
            if self._dir.fsync:
                os.fsync(fd)
        except OSError:
            # All or nothing: cut off whatever part of this batch reached the file.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
                if is_batch:
                    journal.end_batch(pending, self._dir.fsync)
            raise
        if is_batch:
            journal.end_batch(pending, self._dir.fsync)

    def _parse(self, token: str, content: bytes) -> SampleSeries:
        # Bytes after the last newline are a line still being written, or torn by a crash.
        complete = content[: _end_of_last_line_in(content)]
        if complete.startswith(SAMPLES_HEADER):
            series = _parse_clean(complete[len(SAMPLES_HEADER) :])
            if series is not None:
                return series
        return self._parse_line_by_line(token, complete)

    def _parse_line_by_line(self, token: str, complete: bytes) -> SampleSeries:
        """The slow path, for a file with damaged lines: keep each line that is a valid sample."""
        series = SampleSeries([], [])
        unreadable = 0
        for line in complete.splitlines():
            sample = _parse_line(line)
            if sample is not None:
                series.cpu.append(sample.cpu)
                series.taken_at.append(sample.taken_at)
            elif line != _HEADER_LINE:
                unreadable += 1
        if unreadable and token not in self._warned_about:
            self._warned_about.add(token)
            # Once per file, naming it by a glob of the token's first characters: the token is a credential.
            logger.warning("skipped %d unreadable lines in sessions/%s*.csv", unreadable, token[:8])
        return series


def _parse_clean(lines: bytes) -> SampleSeries | None:
    """All the lines at once, when every one is a valid `cpu,time` sample (as we write them); else None.

    Parsing the file as one flat list of numbers is several times faster than a line at a time.
    """
    if lines.count(b",") != lines.count(b"\n"):
        return None
    try:
        numbers = list(map(float, lines.replace(b"\n", b",").split(b",")[:-1]))
    except ValueError:
        return None
    cpu, taken_at = numbers[0::2], numbers[1::2]
    if not cpu:
        return SampleSeries([], [])
    # The rules of CpuSample, checked on whole columns (NaN fails every comparison, so it fails here too).
    valid = (
        all(map(math.isfinite, numbers))
        and min(cpu) >= 0
        and min(taken_at) >= 0
        and max(taken_at) < MAX_TIMESTAMP
    )
    return SampleSeries(cpu, taken_at) if valid else None


def _heal_torn_tail(fd: int) -> int:
    """Cut the file back to its last complete line, and return its size then."""
    size = os.fstat(fd).st_size
    end = _end_of_last_line(fd, size)
    if end != size:
        logger.warning("cut %d bytes of a torn line off a samples file", size - end)
        os.ftruncate(fd, end)
    return end


def _end_of_last_line(fd: int, size: int) -> int:
    """The offset just after the file's last newline, 0 if it has none."""
    # The usual case, a file ending in a whole line, costs a one-byte read.
    if size and os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        end_in_chunk = _end_of_last_line_in(os.pread(fd, end - start, start))
        if end_in_chunk:
            return start + end_in_chunk
        end = start
    return 0


def _end_of_last_line_in(content: bytes) -> int:
    """The offset just after the last newline in the bytes, 0 if they have none."""
    return content.rfind(b"\n") + 1


def _parse_line(line: bytes) -> CpuSample | None:
    """The sample on a CSV line, or None unless the line is exactly two valid numbers."""
    fields = line.split(b",")
    if len(fields) != 2:
        return None
    try:
        return CpuSample(float(fields[0]), float(fields[1]))
    except (ValueError, InvalidInput):
        return None
