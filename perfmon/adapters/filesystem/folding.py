"""Folding: a compacted day's late samples (`<day>.late.csv`) merged into its compacted segment, so that
late files do not pile up beside a year of history for every pass of maintenance to look at.

A late file is folded once it is wholly rolled up and nothing came for it for QUIET seconds (an agent's
spool drains in minutes; each fold compresses the whole day again). Like compaction, the day and the
late file are read under the session's exclusive lock, sorted and compressed without it
(compaction.prepare), and installed under the lock again only if neither changed (same size, same
inode; both are kept open meanwhile, so no other file can take their inode numbers).

The install must never let a reader, or a crash, see a late sample twice or not at all, and renames
are atomic one file at a time. `<day>.folded` says which compacted segment holds the late file's
samples: the st_dev and st_ino of the new compacted segment, written before it is renamed into place.
Readers count the late file unless the compacted segment in place is the one the marker names. In order:

1. the marker is published whole (a crash here: it names a file not in place, the late file counts);
2. the old index is unlinked (a crash: the old segment is read whole, still right);
3. the new compacted segment is renamed into place: the late file stops counting, atomically;
4. the new index is renamed into place;
5. the late file, its watermark and the marker are removed (settle()).

A crash after 3 leaves the marker and the late file: settle() finishes the fold, under the lock, before
anything else touches the late file: in maintenance, and in appends before a late sample would be
added to a file that no longer counts. The late samples' rollups are in the rollup files already (a
late file is folded only once wholly rolled up, and a compacted segment is wholly rolled up by
definition): folding changes no rollup, and the day's rollup files are tidied after it.
"""

from __future__ import annotations

import contextlib
import lzma
import os
from pathlib import Path

from perfmon.adapters.filesystem import compressed, rolling, segments, watermarks
from perfmon.adapters.filesystem.compaction import ClosedDay, Prepared, discard, release, tidy_rollups
from perfmon.adapters.filesystem.files import publish_file, sync_directory
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import COMPACTED, COMPACTED_INDEX, FOLDED, LATE

# Seconds without a late sample before a late file is folded (by its modification time).
QUIET = 3600.0


def folded_into(series: Path, day: str) -> bool:
    """True when the day's compacted segment in place holds its late file's samples (a fold cut short
    after its step 3): the late file no longer counts."""
    try:
        marker = (series / (day + FOLDED)).read_bytes()
        stat = os.stat(series / (day + COMPACTED))
    except FileNotFoundError:
        return False
    return marker == _identity_text((stat.st_dev, stat.st_ino))


def settle(series: Path, day: str, fsync: bool = False) -> bool:
    """Under the session's exclusive lock: finish a fold cut short after its step 3 (remove the late
    file), or forget one cut short before it (remove the marker only). True when the late file went;
    its line in rolled.csv is left for the caller (roll_up drops the lines of files that are gone, and
    an append that makes the late file anew sets its line to 0). With fsync, the late file's removal
    is durable before the marker's (a journalling filesystem keeps their order anyway)."""
    removed = folded_into(series, day)
    if removed:
        _unlink(series / (day + LATE))
        if fsync:
            sync_directory(series)
    _unlink(series / (day + FOLDED))
    return removed


def late_days(series: Path, now: float, budget: int, scan: bool = False) -> tuple[list[ClosedDay], bool]:
    """Under the session's exclusive lock: the compacted days whose late files are ready to fold (wholly
    rolled up, untouched for QUIET seconds before `now`), with the day's samples and the late ones
    after them, up to about `budget` bytes; and whether any late file is left after those. Folds cut
    short are settled first. The late files are those rolled.csv names, or with scan those in the
    series folder (rolling.plain_segments)."""
    marks = watermarks.read(series)
    ready: list[ClosedDay] = []
    left = False
    for name in rolling.plain_segments(series, marks, scan):
        if not name.endswith(LATE):
            continue
        day = name.removesuffix(LATE)
        if os.path.lexists(series / (day + FOLDED)) and settle(series, day):
            continue
        if budget <= 0:
            left = True
            break
        try:
            closed = _read(series, day, marks, now)
        except BaseException:
            for earlier in ready:
                release(earlier)
            raise
        if closed is None:
            left = True
        else:
            ready.append(closed)
            budget -= len(closed.content)
    return ready, left


def _read(series: Path, day: str, marks: dict[str, int], now: float) -> ClosedDay | None:
    try:
        stat = os.stat(series / (day + LATE))
        if stat.st_mtime + QUIET > now or marks.get(day + LATE, 0) < stat.st_size:
            return None  # samples may still come, or some are not rolled up (or a torn tail is left)
        late = os.open(series / (day + LATE), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    pins = [late]
    try:
        stat = os.fstat(late)
        if marks.get(day + LATE, 0) < stat.st_size:
            raise _NotReady  # grew since the stat: its next pass
        content = os.open(series / (day + COMPACTED), os.O_RDONLY | os.O_CLOEXEC)
        pins.append(content)
        size = os.fstat(content).st_size
        text = compressed.decompress(segments.file_reader(content)(0, size))
        late_text = segments.file_reader(late)(0, stat.st_size)
        late_text = late_text[late_text.find(b"\n") + 1 :]  # after its header
        compacted = os.fstat(content)
    except (_NotReady, FileNotFoundError, lzma.LZMAError):
        # Not ready, pruned meanwhile, or a damaged compacted segment: left as it is (reads skip the
        # damaged segment and still count the late file).
        for fd in pins:
            os.close(fd)
        return None
    except BaseException:
        for fd in pins:
            os.close(fd)
        raise
    return ClosedDay(
        day,
        text + late_text,
        stat.st_size,
        (stat.st_dev, stat.st_ino),
        tuple(pins),
        compacted=(compacted.st_dev, compacted.st_ino),
    )


class _NotReady(Exception):
    pass


def install(data_dir: DataDir, series: Path, prepared: Prepared) -> bool:
    """Under the session's exclusive lock: put the folded day in place of the compacted segment and its
    late file, unless either changed since they were read. True when installed."""
    day = prepared.day
    try:
        late, compacted = os.stat(series / (day + LATE)), os.stat(series / (day + COMPACTED))
        unchanged = (late.st_size, (late.st_dev, late.st_ino), (compacted.st_dev, compacted.st_ino)) == (
            prepared.size,
            prepared.identity,
            prepared.compacted,
        )
    except FileNotFoundError:
        unchanged = False
    if not unchanged or os.path.lexists(series / (day + FOLDED)):
        discard(prepared)
        return False
    new = os.stat(prepared.content)
    publish_file(data_dir, series / (day + FOLDED), _identity_text((new.st_dev, new.st_ino)))
    _unlink(series / (day + COMPACTED_INDEX))
    if data_dir.fsync:
        sync_directory(series)
    os.replace(prepared.content, series / (day + COMPACTED))
    os.replace(prepared.index, series / (day + COMPACTED_INDEX))
    if data_dir.fsync:
        sync_directory(series)
    settle(series, day, data_dir.fsync)
    _forget_watermark(data_dir, series, day + LATE)
    tidy_rollups(data_dir, series, day)
    return True


def _forget_watermark(data_dir: DataDir, series: Path, name: str) -> None:
    watermarks.forget(data_dir, series, name)


def _identity_text(identity: tuple[int, int]) -> bytes:
    return f"{identity[0]},{identity[1]}\n".encode()


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
