"""Keeping rollup files: new partial buckets merged into their files (minute buckets in a file per UTC
day, hour buckets per month, day buckets per year), files tidied and cut by retention.

A pass of maintenance adds the buckets of the samples rolled up since the last pass. The first of them
usually continues the file's last row (the minute still filling up): that row is replaced by the two
merged, so a file holds one row per bucket in the normal case, whatever the pace of the passes. Late
samples add partial rows further up in time, which readers merge and tidy() folds in when the day is
compacted.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from perfmon.adapters.filesystem import rollup_rows, segments
from perfmon.adapters.filesystem.edits import Edit
from perfmon.adapters.filesystem.files import replace_file
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import ROLLUP_FILES, rollup_file
from perfmon.domain.rollups import RollupBucket, merge_partials


def merge_edits(series: Path, metric: str, width: float, buckets: list[RollupBucket]) -> list[Edit]:
    """The edits that add the partial buckets (of the width, sorted by start) to the series' files."""
    folder, _ = ROLLUP_FILES[width]
    edits = [Edit.folder(f"{metric}/{folder}")] if buckets and not (series / folder).is_dir() else []
    for name, in_file in itertools.groupby(buckets, key=lambda bucket: rollup_file(width, bucket.start)):
        edits.extend(_file_edits(series, metric, name, width, list(in_file)))
    return edits


def _file_edits(
    series: Path, metric: str, name: str, width: float, buckets: list[RollupBucket]
) -> list[Edit]:
    rows = b"".join(map(rollup_rows.row, buckets))
    try:
        fd = os.open(series / name, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return [Edit(f"{metric}/{name}", -1, rollup_rows.HEADER + rows)]
    try:
        read = segments.file_reader(fd)
        size = os.fstat(fd).st_size
        end = segments.end_of_last_line(read, size)
        start, line = segments.last_line(read, end)
        torn = read(end, size - end)
    finally:
        os.close(fd)
    last = rollup_rows.bucket_of(line, width)
    first = buckets[0]
    if last is not None and last.start == first.start:
        merged = rollup_rows.row(last.merged(first)) + b"".join(map(rollup_rows.row, buckets[1:]))
        return [Edit(f"{metric}/{name}", start, merged, replaced=line + b"\n" + torn)]
    return [Edit(f"{metric}/{name}", end, rows if end else rollup_rows.HEADER + rows, replaced=torn)]


def tidy(data_dir: DataDir, series: Path, name: str, width: float) -> None:
    """Under the session's exclusive lock: rewrite the file with one row per bucket in time order, if it
    has partial rows, rows out of order or damaged rows."""
    try:
        content = (series / name).read_bytes()
    except FileNotFoundError:
        return
    buckets = rollup_rows.parse(content, width)
    merged = merge_partials(buckets)
    tidied = rollup_rows.HEADER + b"".join(map(rollup_rows.row, merged))
    if merged != buckets or len(tidied) != len(content):
        # Replaced whole (the same buckets, in order): a crash leaves the old file or the new one.
        replace_file(data_dir, series / name, tidied)


def without_buckets_before(content: bytes, width: float, cutoff: float) -> bytes | None:
    """The file's content without the buckets that start before the cutoff; None when it has none."""
    buckets = rollup_rows.parse(content, width)
    kept = [bucket for bucket in buckets if bucket.start >= cutoff]
    if len(kept) == len(buckets):
        return None
    return rollup_rows.HEADER + b"".join(map(rollup_rows.row, kept))
