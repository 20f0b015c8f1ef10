"""Retention in file storage: whole day segments of raw samples and whole rollup files are dropped; a
month or year file of rollups that straddles the cutoff is replaced by its rows from the cutoff on.

Each function works on one series under its session's exclusive lock, held for a few unlinks and at
most a few small rewrites, so ingest into the session hardly waits.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from perfmon.adapters.filesystem import rolling, rollup_files, watermarks
from perfmon.adapters.filesystem.files import replace_file
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.series_files import ROLLED, ROLLUP_FILES, DayFiles, days_in, period_of


@dataclass
class Tally:
    """How many units (day segments, rollup files) and bytes a prune drops."""

    units: int = 0
    bytes: int = 0

    def add(self, other: Tally) -> None:
        self.units += other.units
        self.bytes += other.bytes


def prune_raw(data_dir: DataDir, series: Path, before_day: str, apply: bool) -> Tally:
    """Drop the raw files of the days named before `before_day` (YYYY-MM-DD) that are wholly rolled up
    (the caller rolls them up first); with apply=False only count them."""
    marks = watermarks.read(series)
    tally = Tally()
    dropped: list[str] = []
    for name, day in days_in(os.listdir(series)).items():
        if name >= before_day:
            break
        if apply and not _rolled_up(series, day, marks):
            continue  # samples appended since the roll-up: dropped by a later prune
        tally.units += 1
        tally.bytes += sum(os.stat(series / file).st_size for file in day.names())
        if apply:
            for file in day.names():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(series / file)
            dropped.extend(day.names())
    if dropped and any(name in marks for name in dropped):
        kept = {name: offset for name, offset in marks.items() if name not in dropped}
        replace_file(data_dir, series / ROLLED, watermarks.text(kept))
    return tally


def _rolled_up(series: Path, day: DayFiles, marks: dict[str, int]) -> bool:
    plain = (name for name in (day.uncompacted, day.late) if name is not None)
    return all(rolling.is_rolled_up(series, name, marks) for name in plain)


def prune_rollups(data_dir: DataDir, series: Path, cutoff: float, apply: bool) -> Tally:
    """Drop the rollup buckets that start before the cutoff (a UTC day's start); with apply=False only
    count the files that would be dropped or rewritten."""
    tally = Tally()
    for width, (folder, _) in ROLLUP_FILES.items():
        try:
            names = sorted(name for name in os.listdir(series / folder) if name.endswith(".csv"))
        except FileNotFoundError:
            continue
        for name in names:
            try:
                start, end = period_of(width, name)
            except ValueError:
                continue  # not a file of ours
            if start < cutoff:
                tally.add(_prune_file(data_dir, series / folder / name, width, cutoff, end <= cutoff, apply))
    return tally


def _prune_file(
    data_dir: DataDir, path: Path, width: float, cutoff: float, whole: bool, apply: bool
) -> Tally:
    if whole:
        size = os.stat(path).st_size
        if apply:
            os.unlink(path)
        return Tally(1, size)
    content = path.read_bytes()
    kept = rollup_files.without_buckets_before(content, width, cutoff)
    if kept is None:
        return Tally()
    if apply:
        replace_file(data_dir, path, kept)
    return Tally(1, len(content) - len(kept))
