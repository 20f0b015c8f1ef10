"""Upgrade in place: a data dir written by an earlier release (one `sessions/<token>.csv` per session,
`cpu,time` lines, and maybe `<token>.pending`, the journal of a batch that never finished) converted to
the time-partitioned layout when FileStorage opens it.

Each session is converted whole and crash-safely: its series are built under `tmp/upgrade-<token>/`,
that folder is renamed to `sessions/<token>/` (its appearance commits the upgrade), then the old files
are unlinked. A restart after a crash anywhere finishes the job; a flock() on the sessions folder lets
one process at a time do it, so two servers starting at once on one data dir upgrade each session once.
What the old reader did not return, the upgrade does not keep: the unfinished batch, a torn last line,
damaged lines. Stop servers of the earlier release first: they would keep writing the old files.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from perfmon.adapters.filesystem import segments
from perfmon.adapters.filesystem.files import create_file, sync_directory
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import RAW, UNSORTED, day_name
from perfmon.domain.model import CPU, SampleSeries, is_canonical_session_token
from perfmon.domain.rollups import DAY, day_start

logger = logging.getLogger(__name__)

_BUILDING = "upgrade-"
# Bytes of an old samples file converted at a time.
_CHUNK = 4 << 20


def upgrade(data_dir: DataDir) -> int:
    """Convert every session still in the old layout; return how many were."""
    with _upgrade_lock(data_dir):
        for leftover in data_dir.tmp.glob(_BUILDING + "*"):
            shutil.rmtree(leftover)  # a conversion a crash interrupted: it starts again
        names = set(os.listdir(data_dir.sessions))
        upgraded = skipped = 0
        for name in sorted(names):
            token, dot, kind = name.partition(".")
            if not (dot and kind in ("csv", "pending") and is_canonical_session_token(token)):
                continue
            if kind == "csv":
                skipped += _upgrade_session(data_dir, token)
                upgraded += 1
            elif f"{token}.csv" not in names:
                os.unlink(data_dir.sessions / name)  # a journal whose samples file is already converted
    if upgraded:
        logger.info(
            "upgraded %d sessions to the time-partitioned layout (%d unreadable lines left out)",
            upgraded,
            skipped,
        )
    return upgraded


@contextlib.contextmanager
def _upgrade_lock(data_dir: DataDir) -> Iterator[None]:
    fd = os.open(data_dir.sessions, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _upgrade_session(data_dir: DataDir, token: str) -> int:
    """Convert one session (unless a crash came after its conversion was committed); return how many
    of its lines were unreadable."""
    old = data_dir.sessions / f"{token}.csv"
    pending = data_dir.sessions / f"{token}.pending"
    skipped = 0
    if not data_dir.session_folder(token).exists():
        building = data_dir.tmp / (_BUILDING + token)
        building.mkdir(mode=0o700)
        skipped = _convert(data_dir, old, pending, building)
        os.rename(building, data_dir.session_folder(token))
        if data_dir.fsync:
            sync_directory(data_dir.sessions)
    for path in (old, pending):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if data_dir.fsync:
        sync_directory(data_dir.sessions)
    return skipped


def _convert(data_dir: DataDir, old: Path, pending: Path, folder: Path) -> int:
    """Write what the old reader returned of the samples file as the `cpu` series of a session folder,
    a _CHUNK of the file at a time (a year at 1 Hz is most of a GB of text, several as Python floats);
    return how many lines were unreadable."""
    series = _SeriesBuilder(data_dir, folder / CPU)
    skipped = 0
    with open(old, "rb") as file:
        limit = _committed_size(os.fstat(file.fileno()).st_size, pending)
        carried = b""
        while limit > 0:
            read = file.read(min(_CHUNK, limit))
            if not read:
                break  # cut shorter while we read: what is left is all there is
            chunk = carried + read
            limit -= len(read)
            cut = chunk.rfind(b"\n") + 1
            carried = chunk[cut:]
            if not cut and limit > 0:
                continue  # a line longer than a chunk: read on
            lines, skipped_here = _old_samples(chunk[:cut])
            series.add(lines)
            skipped += skipped_here
    # What is after the last newline (within the committed size) is a torn line: the old reader skipped it.
    series.finish()
    return skipped


def _committed_size(size: int, pending: Path) -> int:
    """The samples file's size without its unfinished batch, if its journal names one."""
    with contextlib.suppress(FileNotFoundError):
        record = pending.read_bytes()
        # A record without its newline was torn before its batch's first byte was written.
        if record.endswith(b"\n") and record[:-1].isdigit():
            return min(size, int(record))
    return size


def _old_samples(content: bytes) -> tuple[SampleSeries, int]:
    """The lines of the content that the old reader returned, valid CPU samples (a percentage >= 0),
    in arrival order; and how many it skipped."""
    parsed = segments.parse(content)
    series = parsed.series
    if series.values and min(series.values) < 0:
        kept = [i for i, value in enumerate(series.values) if value >= 0]
        parsed.unreadable += len(series.values) - len(kept)
        series = SampleSeries([series.values[i] for i in kept], [series.taken_at[i] for i in kept])
    return series, parsed.unreadable


class _SeriesBuilder:
    """The `cpu` series of a session folder being built: a segment per UTC day, appended in arrival
    order, flagged unsorted where a sample came before the one written before it."""

    def __init__(self, data_dir: DataDir, folder: Path) -> None:
        self._dir = data_dir
        self._folder = folder
        self._last: dict[float, float] = {}
        self._unsorted: set[float] = set()

    def add(self, series: SampleSeries) -> None:
        for day, (values, times) in _by_day(series).items():
            path = self._folder / (day_name(day) + RAW)
            if day not in self._last:
                if not self._last:
                    self._folder.mkdir(mode=0o700)
                create_file(self._dir, path, segments.header(CPU))
                self._last[day] = times[0]
            if any(later < earlier for earlier, later in zip([self._last[day], *times], times, strict=False)):
                self._unsorted.add(day)
            self._last[day] = times[-1]
            with open(path, "ab") as segment:
                segment.write(segments.lines_of(values, times))

    def finish(self) -> None:
        """Flag the unsorted days; with fsync, make every segment and name durable."""
        for day in self._unsorted:
            create_file(self._dir, self._folder / (day_name(day) + UNSORTED), b"")
        if self._dir.fsync and self._last:
            for day in self._last:
                fd = os.open(self._folder / (day_name(day) + RAW), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            sync_directory(self._folder)
            sync_directory(self._folder.parent)


def _by_day(series: SampleSeries) -> dict[float, tuple[list[float], list[float]]]:
    days: dict[float, tuple[list[float], list[float]]] = {}
    start = end = -1.0
    values: list[float] = []
    times: list[float] = []
    for value, moment in zip(series.values, series.taken_at, strict=True):
        if not start <= moment < end:
            # Samples come in time order in the normal case: a day is looked up only when it changes.
            start = day_start(moment)
            end = start + DAY
            values, times = days.setdefault(start, ([], []))
        values.append(value)
        times.append(moment)
    return days
