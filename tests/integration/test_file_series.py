"""What only the file storage's series promise: a segment per UTC day read only where a range meets it,
late samples flagged and still read in time order, closed days compacted crash-safely, rollups never
counting a sample twice whatever crashes or how many processes maintain one data dir."""

from __future__ import annotations

import lzma
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmon.adapters.filesystem import FileStorage, compaction
from perfmon.adapters.filesystem.layout import DataDir
from perfmon.adapters.filesystem.session_lock import SessionLocks
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.model import EVERYTHING, Point, Sample, SampleSeries, Session, TimeRange, Username
from perfmon.domain.rollups import DAY, ROLLUP_WIDTHS, rollup
from tests.killed import kill_when_it_says

TOKEN = "2f4e6a8c-1b3d-4f5a-9c7e-0a2b4c6d8e1f"
# 2023-11-14 00:00 UTC, and the names of that day and the next.
DAY_ONE = 1_699_920_000.0
FIRST, SECOND = "2023-11-14", "2023-11-15"


def _storage(root: Path) -> FileStorage:
    storage = FileStorage(root, fsync=False)
    if storage.sessions.get(TOKEN) is None:
        storage.sessions.add(Session(TOKEN, Username("alice"), 1.0))
    return storage


def _series(root: Path) -> Path:
    return root / "sessions" / TOKEN / "cpu"


def _cpu(value: float, moment: float) -> Sample:
    return Sample(moment, {"cpu": value})


def _assert_rollups_exact(storage: FileStorage, metric: str = "cpu") -> SampleSeries:
    raw = storage.samples.between(TOKEN, metric, EVERYTHING)
    for width in ROLLUP_WIDTHS:
        assert storage.samples.rollups(TOKEN, metric, width, EVERYTHING) == rollup(raw, width)
    return raw


def test_a_range_read_opens_only_the_days_it_meets(tmp_path: Path) -> None:
    storage = _storage(tmp_path / "data")
    storage.samples.append(TOKEN, [_cpu(1.0, DAY_ONE + 10), _cpu(2.0, DAY_ONE + DAY + 10)])
    # The first day's segment cannot be read at all (a folder where the file should be).
    (_series(tmp_path / "data") / f"{FIRST}.csv").unlink()
    (_series(tmp_path / "data") / f"{FIRST}.csv").mkdir()
    second_day = TimeRange(DAY_ONE + DAY, DAY_ONE + 2 * DAY)
    assert storage.samples.between(TOKEN, "cpu", second_day) == [Point(2.0, DAY_ONE + DAY + 10)]
    with pytest.raises(StorageUnavailable):
        storage.samples.between(TOKEN, "cpu", EVERYTHING)


# Folders listed by this process while a test watches (an audit hook cannot be removed: it is added
# once, and records only while a list is pushed here).
_LISTINGS: list[list[str]] = []


def _record_listings(event: str, arguments: tuple[object, ...]) -> None:
    if _LISTINGS and event in ("os.listdir", "os.scandir"):
        _LISTINGS[-1].append(str(arguments[0]))


def test_reading_the_last_minutes_lists_no_folder_of_the_history(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    for day in range(30):
        storage.samples.append(TOKEN, [_cpu(float(i), DAY_ONE + day * DAY + 600 * i) for i in range(144)])
    storage.samples.maintain(DAY_ONE + 31 * DAY)
    now = DAY_ONE + 30 * DAY - 1
    last = TimeRange(now - 600, now)
    if not _LISTINGS:
        sys.addaudithook(_record_listings)
    _LISTINGS.append([])
    try:
        raw = storage.samples.between(TOKEN, "cpu", last)
        minutes = storage.samples.rollups(TOKEN, "cpu", 60.0, last)
        hours = storage.samples.rollups(TOKEN, "cpu", 3600.0, last)
    finally:
        listed = _LISTINGS.pop()
    assert listed == []
    assert raw == [Point(143.0, DAY_ONE + 29 * DAY + 600 * 143)]
    assert [(bucket.count, bucket.first) for bucket in minutes] == [(1, raw.taken_at[0])]
    assert [(bucket.count, bucket.last) for bucket in hours] == [(6, raw.taken_at[0])]
    # A long range lists the folders, and finds the same as before.
    assert len(storage.samples.between(TOKEN, "cpu", TimeRange(DAY_ONE, now))) == 30 * 144


def _record_work(event: str, arguments: tuple[object, ...]) -> None:
    if _LISTINGS and event in ("os.listdir", "os.scandir", "open"):
        _LISTINGS[-1].append(f"{event} {arguments[0]}")


def test_a_maintenance_pass_looks_only_at_what_changed_not_at_the_history(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    for day in range(40):
        storage.samples.append(TOKEN, [_cpu(float(i), DAY_ONE + day * DAY + 3600 * i) for i in range(24)])
        storage.samples.maintain(DAY_ONE + day * DAY + 1)
    # Late samples for ten compacted days, rolled up by a pass.
    storage.samples.append(TOKEN, [_cpu(7.0, DAY_ONE + day * DAY + 30) for day in range(0, 30, 3)])
    now = DAY_ONE + 39 * DAY + 23 * 3600 + 60
    storage.samples.maintain(now)
    if not _LISTINGS:
        sys.addaudithook(_record_listings)
        sys.addaudithook(_record_work)
    _LISTINGS.append([])
    try:
        storage.samples.append(TOKEN, [_cpu(1.0, now)])
        storage.samples.maintain(now + 1)
    finally:
        work = _LISTINGS.pop()
    series = str(_series(root))
    assert [entry for entry in work if entry.startswith("os.") and series in entry] == []
    opened = sorted({entry.split(f"{series}/")[1] for entry in work if entry.startswith(f"open {series}/")})
    # Today's segment, and the rollup files and watermarks that its new sample changes.
    assert opened == [
        "2023-12-23.csv",
        "days/2023.csv",
        "hours/2023-12.csv",
        "minutes/2023-12-23.csv",
        "rolled.csv",
    ]
    assert len(_assert_rollups_exact(storage)) == 40 * 24 + 10 + 1


# Quarter seconds over two days: equal times and bounds equal to a sample's time are common.
_moments = st.integers(0, 8 * DAY // 60).map(lambda quarter_minutes: DAY_ONE + quarter_minutes * 15.0)
_pairs = st.lists(st.tuples(st.integers(0, 100).map(float), _moments), min_size=1, max_size=150)


@settings(max_examples=30, deadline=None)
@given(
    batches=st.lists(_pairs, min_size=1, max_size=4),
    compact_after=st.integers(0, 4),
    bounds=st.tuples(st.none() | _moments, st.none() | _moments),
)
def test_late_and_out_of_order_samples_are_read_in_time_order_before_and_after_compaction(
    batches: list[list[tuple[float, float]]], compact_after: int, bounds: tuple[float | None, float | None]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        storage = _storage(root)
        for index, batch in enumerate(batches):
            if index == compact_after:
                storage.samples.maintain(DAY_ONE + 4 * DAY)  # both days closed and compacted
            storage.samples.append(TOKEN, [_cpu(*pair) for pair in batch])
        start, end = bounds
        if start is not None and end is not None and start > end:
            start, end = end, start
        time_range = TimeRange(start, end)
        pairs = [pair for batch in batches for pair in batch]
        everything = SampleSeries([v for v, _ in pairs], [t for _, t in pairs])
        assert storage.samples.between(TOKEN, "cpu", time_range) == everything.within(time_range)
        _assert_rollups_exact(storage)
        storage.samples.maintain(DAY_ONE + 4 * DAY)
        assert storage.samples.between(TOKEN, "cpu", time_range) == everything.within(time_range)
        _assert_rollups_exact(storage)


def test_a_segment_is_flagged_unsorted_by_the_first_sample_out_of_time_order(tmp_path: Path) -> None:
    storage = _storage(tmp_path / "data")
    storage.samples.append(TOKEN, [_cpu(1.0, DAY_ONE + 10), _cpu(2.0, DAY_ONE + 10), _cpu(3.0, DAY_ONE + 20)])
    assert not (_series(tmp_path / "data") / f"{FIRST}.unsorted").exists()
    storage.samples.append(TOKEN, [_cpu(4.0, DAY_ONE + 15)])
    assert (_series(tmp_path / "data") / f"{FIRST}.unsorted").exists()
    assert storage.samples.between(TOKEN, "cpu", TimeRange(DAY_ONE + 11, DAY_ONE + 20)) == [
        Point(4.0, DAY_ONE + 15),
        Point(3.0, DAY_ONE + 20),
    ]


def test_a_closed_day_is_compacted_sorted_and_late_samples_for_it_are_kept_beside_it(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    samples = [_cpu(float(i % 50), DAY_ONE + 2 * i + 0.25) for i in range(2_000)]
    storage.samples.append(TOKEN, [*samples[1000:], *samples[:1000]])  # out of order
    storage.samples.maintain(DAY_ONE + DAY + 60)  # closed, but samples for it may still come
    assert (_series(root) / f"{FIRST}.csv").exists()
    storage.samples.maintain(DAY_ONE + DAY + 3600)
    names = sorted(path.name for path in _series(root).iterdir())
    assert names == [f"{FIRST}.csv.xz", f"{FIRST}.idx", "days", "hours", "minutes", "rolled.csv"]
    text = lzma.decompress((_series(root) / f"{FIRST}.csv.xz").read_bytes())
    assert text == b"cpu,time\n" + b"".join(f"{s.values['cpu']!r},{s.taken_at!r}\n".encode() for s in samples)
    if shutil.which("xzcat"):
        printed = subprocess.run(
            ["xzcat", _series(root) / f"{FIRST}.csv.xz"], capture_output=True, check=True
        )
        assert printed.stdout == text

    storage.samples.append(TOKEN, [_cpu(99.0, DAY_ONE + 1.0), _cpu(98.0, DAY_ONE + 0.25)])
    assert (_series(root) / f"{FIRST}.late.csv").read_bytes() == (
        b"cpu,time\n99.0,1699920001.0\n98.0,1699920000.25\n"
    )
    first_seconds = storage.samples.between(TOKEN, "cpu", TimeRange(DAY_ONE, DAY_ONE + 2.0))
    assert first_seconds == [
        Point(0.0, DAY_ONE + 0.25),
        Point(98.0, DAY_ONE + 0.25),
        Point(99.0, DAY_ONE + 1.0),
    ]
    raw = _assert_rollups_exact(storage)
    assert len(raw) == 2_002
    storage.samples.maintain(DAY_ONE + 2 * DAY)
    _assert_rollups_exact(storage)


def test_minute_rows_are_one_per_bucket_once_the_day_is_compacted(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    for second in range(0, 180, 7):
        storage.samples.append(TOKEN, [_cpu(1.0, DAY_ONE + second)])
        storage.samples.maintain(DAY_ONE + second)
    storage.samples.append(TOKEN, [_cpu(2.0, DAY_ONE + 5)])  # late: a partial row of the first minute
    storage.samples.maintain(DAY_ONE + DAY + 3600)
    minutes = (_series(root) / "minutes" / f"{FIRST}.csv").read_text().splitlines()
    assert [row.split(",")[:2] for row in minutes[1:]] == [
        [repr(DAY_ONE), "10"],
        [repr(DAY_ONE + 60), "9"],
        [repr(DAY_ONE + 120), "8"],
    ]
    _assert_rollups_exact(storage)


def test_a_compaction_cut_short_before_the_plain_segment_is_unlinked_counts_each_sample_once(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    storage.samples.append(TOKEN, [_cpu(float(i), DAY_ONE + i) for i in range(100)])
    plain = (_series(root) / f"{FIRST}.csv").read_bytes()
    storage.samples.maintain(DAY_ONE + 2 * DAY)
    # The crash came after the compacted segment was renamed into place: both are there.
    (_series(root) / f"{FIRST}.csv").write_bytes(plain)
    again = _storage(root)
    assert len(again.samples.between(TOKEN, "cpu", EVERYTHING)) == 100
    again.samples.append(TOKEN, [_cpu(7.0, DAY_ONE + 0.5)])
    assert (_series(root) / f"{FIRST}.late.csv").exists()
    raw = _assert_rollups_exact(again)
    assert len(raw) == 101
    again.samples.maintain(DAY_ONE + 2 * DAY)
    assert not (_series(root) / f"{FIRST}.csv").exists()
    _assert_rollups_exact(again)


def test_a_compaction_cut_short_after_its_index_or_with_a_stray_index_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    storage.samples.append(TOKEN, [_cpu(float(i), DAY_ONE + i) for i in range(3_000)])
    storage.samples.append(TOKEN, [_cpu(float(i), DAY_ONE + DAY + i) for i in range(3_000)])
    # A crash between the index's rename and the compacted segment's: an index beside the plain segment.
    (_series(root) / f"{FIRST}.idx").write_bytes(b"first,offset\n1699920000.0,0\n1699920600.0,999999\n")
    within = TimeRange(DAY_ONE + 1_000, DAY_ONE + 1_009)
    assert storage.samples.between(TOKEN, "cpu", within) == [
        Point(float(i), DAY_ONE + i) for i in range(1_000, 1_010)
    ]
    storage.samples.maintain(DAY_ONE + 3 * DAY)
    assert storage.samples.between(TOKEN, "cpu", within) == [
        Point(float(i), DAY_ONE + i) for i in range(1_000, 1_010)
    ]
    # An index damaged (or another day's): the compacted segment is read whole instead.
    shutil.copy(_series(root) / f"{SECOND}.idx", _series(root) / f"{FIRST}.idx")
    assert storage.samples.between(TOKEN, "cpu", within) == [
        Point(float(i), DAY_ONE + i) for i in range(1_000, 1_010)
    ]
    assert len(storage.samples.between(TOKEN, "cpu", EVERYTHING)) == 6_000


def test_a_late_sample_appended_while_a_day_with_a_torn_tail_is_compressed_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    storage.samples.append(TOKEN, [_cpu(1.0, DAY_ONE + 10), _cpu(2.0, DAY_ONE + 20)])
    # A crash tore a one-line append: 17 bytes of a line, no newline.
    with open(_series(root) / f"{FIRST}.csv", "ab") as segment:
        segment.write(b"3.0,1699920030.00")
    storage.samples.maintain(DAY_ONE + 30)
    # Compaction reads the closed day under the lock and compresses it without it; meanwhile a late
    # sample heals the torn tail and appends a line just as long (17 bytes): the segment's size is the same.
    data_dir = DataDir(root, fsync=False)
    locks = SessionLocks(data_dir)
    with locks.exclusive(TOKEN) as folder:
        (closed,), _ = compaction.closed_days(folder / "cpu", DAY_ONE + 2 * DAY, 1 << 20)
    prepared = compaction.prepare(data_dir, "cpu", closed)
    storage.samples.append(TOKEN, [_cpu(4.0, DAY_ONE + 40)])
    with locks.exclusive(TOKEN) as folder:
        compaction.install(data_dir, folder / "cpu", prepared)
    compaction.release(closed)
    storage.samples.maintain(DAY_ONE + 2 * DAY)
    assert storage.samples.between(TOKEN, "cpu", EVERYTHING).values == [1.0, 2.0, 4.0]
    _assert_rollups_exact(storage)


def test_a_day_pruned_and_made_anew_as_long_while_it_is_compressed_is_not_replaced_by_its_old_samples(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    storage.samples.append(TOKEN, [_cpu(1.0, DAY_ONE + 10)])
    data_dir = DataDir(root, fsync=False)
    locks = SessionLocks(data_dir)
    storage.samples.maintain(DAY_ONE + 20)  # rolled up
    with locks.exclusive(TOKEN) as folder:
        (closed,), _ = compaction.closed_days(folder / "cpu", DAY_ONE + 2 * DAY, 1 << 20)
    prepared = compaction.prepare(data_dir, "cpu", closed)
    # Meanwhile the day is pruned, and a late sample makes its segment anew, exactly as long.
    assert storage.samples.prune(DAY_ONE + DAY, None, apply=True).raw_units == 1
    storage.samples.append(TOKEN, [_cpu(2.0, DAY_ONE + 20)])
    assert (_series(root) / f"{FIRST}.csv").stat().st_size == prepared.size
    try:
        with locks.exclusive(TOKEN) as folder:
            assert not compaction.install(data_dir, folder / "cpu", prepared)
    finally:
        compaction.release(closed)
    assert storage.samples.between(TOKEN, "cpu", EVERYTHING) == [Point(2.0, DAY_ONE + 20)]
    storage.samples.maintain(DAY_ONE + 2 * DAY)
    assert (_series(root) / f"{FIRST}.csv.xz").exists()
    assert storage.samples.between(TOKEN, "cpu", EVERYTHING) == [Point(2.0, DAY_ONE + 20)]
    assert list((root / "tmp").iterdir()) == []


# The child appends a day of samples, then runs maintenance; the first write to a file whose path holds
# argv[2] stops after its first half, says so on stdout and waits to be killed.
_MAINTAIN_AND_DIE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from perfmon.adapters.filesystem import FileStorage

    real_pwrite = os.pwrite
    def pwrite_cut_short(fd, data, offset):
        if sys.argv[2] not in os.readlink(f"/proc/self/fd/{fd}"):
            return real_pwrite(fd, data, offset)
        real_pwrite(fd, data[: len(data) // 2], offset)
        print("half written", flush=True)
        time.sleep(60)
    os.pwrite = pwrite_cut_short

    FileStorage(Path(sys.argv[1]), fsync=False).samples.maintain(float(sys.argv[3]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("cut", ["/minutes/", "/hours/", "/days/", "/rolled.csv"])
def test_maintenance_killed_mid_write_never_counts_a_sample_twice(tmp_path: Path, cut: str) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    storage.samples.append(TOKEN, [_cpu(float(i % 7), DAY_ONE + 3 * i) for i in range(5_000)])
    storage.samples.maintain(DAY_ONE + 1)  # rolled up once: the next pass replaces rows in place
    storage.samples.append(TOKEN, [_cpu(1.5, DAY_ONE + 20_000 + i) for i in range(30)])
    kill_when_it_says(_MAINTAIN_AND_DIE, [str(root), cut, str(DAY_ONE + 2)], "half written")
    after = _storage(root)
    assert len(_assert_rollups_exact(after)) == 5_030
    after.samples.maintain(DAY_ONE + 3 * DAY)
    assert len(_assert_rollups_exact(after)) == 5_030
    assert (root / "sessions" / TOKEN / "session.journal").read_bytes() == b""  # none unfinished


# The child compacts a closed day; the first rename out of tmp/ (the compressed day, about to be put in
# place) says so on stdout and waits to be killed.
_COMPACT_AND_DIE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from perfmon.adapters.filesystem import FileStorage

    real_replace = os.replace
    def replace_never_done(source, target):
        if "/tmp/" in str(source):
            print("compressed", flush=True)
            time.sleep(60)
        return real_replace(source, target)
    os.replace = replace_never_done

    FileStorage(Path(sys.argv[1]), fsync=False).samples.maintain(float(sys.argv[2]))
    """
)


@pytest.mark.slow
def test_temporary_files_of_a_compaction_killed_before_its_install_are_swept_once_old(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    storage.samples.append(TOKEN, [_cpu(float(i % 7), DAY_ONE + 3 * i) for i in range(5_000)])
    kill_when_it_says(_COMPACT_AND_DIE, [str(root), str(DAY_ONE + 2 * DAY)], "compressed")
    left = sorted((root / "tmp").iterdir())
    assert len(left) == 2  # the compressed day and its index
    # A server started at once leaves them (another process could be about to rename its own) ...
    restarted = _storage(root)
    restarted.samples.maintain(DAY_ONE + 2 * DAY)
    assert (_series(root) / f"{FIRST}.csv.xz").exists()
    assert sorted((root / "tmp").iterdir()) == left
    # ... and a scan of the data dir once they are an hour old removes them.
    for path in left:
        os.utime(path, (DAY_ONE, DAY_ONE))
    _storage(root).samples.maintain(DAY_ONE + 2 * DAY)
    assert list((root / "tmp").iterdir()) == []
    assert len(_assert_rollups_exact(restarted)) == 5_000


def _append_and_maintain(root: Path, index: int) -> None:
    storage = FileStorage(root, fsync=False)
    for i in range(120):
        storage.samples.append(TOKEN, [Sample(DAY_ONE + 37 * i + index, {"cpu": float(index), "mem": 1.0})])
        if i % 10 == index % 10:
            storage.samples.maintain(DAY_ONE + 37 * i + (2 * DAY if i == 100 else 0))


@pytest.mark.slow
def test_processes_appending_and_maintaining_one_data_dir_count_every_sample_once(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _storage(root)
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_append_and_maintain, args=(root, index)) for index in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    storage = _storage(root)
    storage.samples.maintain(DAY_ONE + 9 * DAY)
    for metric in ("cpu", "mem"):
        assert len(_assert_rollups_exact(storage, metric)) == 360


def test_pruning_drops_whole_files_and_rewrites_the_month_file_that_straddles_the_cutoff(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    # Samples every 6 hours from 2023-11-14 to 2023-12-03.
    storage.samples.append(TOKEN, [_cpu(float(i), DAY_ONE + 6 * 3600 * i) for i in range(80)])
    storage.samples.maintain(DAY_ONE + 30 * DAY)
    hours = _series(root) / "hours"
    november = (hours / "2023-11.csv").stat().st_size
    cutoff = DAY_ONE + 10 * DAY + 7  # 2023-11-24

    dry = storage.samples.prune(cutoff, cutoff, apply=False)
    assert (dry.raw_units, dry.applied) == (10, False)
    assert len(storage.samples.between(TOKEN, "cpu", EVERYTHING)) == 80

    report = storage.samples.prune(cutoff, cutoff, apply=True)
    # Ten day segments; ten minute files, and the files of November's hours and 2023's days (cut).
    assert (report.raw_units, report.rollup_units) == (10, 12)
    assert report.raw_bytes > 0 and report.rollup_bytes > 0
    assert (report.raw_bytes, report.rollup_units, report.rollup_bytes) == (
        dry.raw_bytes,
        dry.rollup_units,
        dry.rollup_bytes,
    )
    assert sorted(path.name for path in _series(root).glob("2023-11-1*")) == []
    assert 0 < (hours / "2023-11.csv").stat().st_size < november
    assert [b.start for b in storage.samples.rollups(TOKEN, "cpu", 3600.0, EVERYTHING)][
        0
    ] == DAY_ONE + 10 * DAY
    assert storage.samples.summaries([TOKEN], "cpu")[TOKEN].count == 40


@pytest.mark.parametrize(
    "stray", ["2023-02-30.csv", "2023-13-01.csv.xz", "0000-01-01.late.csv", "2023-11-31.idx"]
)
def test_a_stray_file_named_by_an_impossible_date_is_ignored_by_maintenance_and_reads(
    tmp_path: Path, stray: str
) -> None:
    root = tmp_path / "data"
    storage = _storage(root)
    storage.samples.append(TOKEN, [_cpu(float(i), DAY_ONE + 600 * i) for i in range(300)])
    (_series(root) / stray).write_bytes(b"cpu,time\n1.0,1677715200.0\n")  # made by hand
    for now in (DAY_ONE + 1, DAY_ONE + 9 * DAY):
        storage.samples.maintain(now)
        assert len(_assert_rollups_exact(storage)) == 300
    assert storage.samples.prune(DAY_ONE + DAY, None, apply=True).raw_units == 1
    assert len(storage.samples.between(TOKEN, "cpu", EVERYTHING)) == 300 - 144
    assert storage.samples.summaries([TOKEN], "cpu")[TOKEN].count == 300  # the rollups keep the day
    assert (_series(root) / stray).exists()


def _with_late_samples(root: Path) -> FileStorage:
    """A compacted day, and late samples for it (rolled up) untouched for an hour."""
    storage = _storage(root)
    storage.samples.append(TOKEN, [_cpu(float(i), DAY_ONE + 7 * i) for i in range(1_000)])
    storage.samples.maintain(DAY_ONE + 2 * DAY)
    storage.samples.append(TOKEN, [_cpu(99.0, DAY_ONE + 14.0), _cpu(98.0, DAY_ONE + 3.5)])
    storage.samples.append(TOKEN, [_cpu(97.0, DAY_ONE + 60.0)])
    storage.samples.maintain(DAY_ONE + 2 * DAY)
    late = _series(root) / f"{FIRST}.late.csv"
    os.utime(late, (DAY_ONE + DAY, DAY_ONE + DAY))
    return storage


def _expected_first_day() -> list[Point]:
    samples = [(float(i), DAY_ONE + 7 * i) for i in range(1_000)]
    late = [(99.0, DAY_ONE + 14.0), (98.0, DAY_ONE + 3.5), (97.0, DAY_ONE + 60.0)]
    return [Point(value, moment) for value, moment in sorted(samples + late, key=lambda pair: pair[1])]


def test_a_late_file_left_alone_for_an_hour_is_folded_into_its_compacted_day(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = _with_late_samples(root)
    minutes_before = storage.samples.rollups(TOKEN, "cpu", 60.0, EVERYTHING)
    storage.samples.maintain(DAY_ONE + DAY + 1_800)  # not an hour after its last sample yet
    assert (_series(root) / f"{FIRST}.late.csv").exists()
    storage.samples.maintain(DAY_ONE + DAY + 3_600)
    names = sorted(path.name for path in _series(root).iterdir())
    assert names == [f"{FIRST}.csv.xz", f"{FIRST}.idx", "days", "hours", "minutes", "rolled.csv"]
    assert (_series(root) / "rolled.csv").read_bytes() == b"file,rolled\n"
    text = lzma.decompress((_series(root) / f"{FIRST}.csv.xz").read_bytes())
    assert text == b"cpu,time\n" + b"".join(
        f"{p.value!r},{p.taken_at!r}\n".encode() for p in _expected_first_day()
    )
    assert storage.samples.between(TOKEN, "cpu", EVERYTHING) == _expected_first_day()
    within = TimeRange(DAY_ONE + 3.5, DAY_ONE + 14.0)
    assert storage.samples.between(TOKEN, "cpu", within) == _expected_first_day()[1:5]
    assert storage.samples.rollups(TOKEN, "cpu", 60.0, EVERYTHING) == minutes_before
    _assert_rollups_exact(storage)
    # The late rows of the minutes were merged into one per bucket.
    minutes = (_series(root) / "minutes" / f"{FIRST}.csv").read_text().splitlines()
    assert len(minutes) == 1 + len(minutes_before)


class _Crash(Exception):
    """A process killed between two changes to the names in a folder."""


def _crash_at(monkeypatch: pytest.MonkeyPatch, step: int) -> list[int]:
    """Make the step-th link, rename or unlink from now on raise _Crash instead of happening."""
    calls = [0]
    for name in ("link", "replace", "unlink"):
        real = getattr(os, name)

        def crashing(*args: object, real: Callable[..., None] = real) -> None:
            calls[0] += 1
            if calls[0] == step:
                raise _Crash
            real(*args)

        monkeypatch.setattr(os, name, crashing)
    return calls


def test_a_fold_cut_short_at_any_step_never_loses_or_doubles_a_late_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The names a fold changes, counted in a pass that finishes.
    storage = _with_late_samples(tmp_path / "whole")
    with monkeypatch.context() as patched:
        steps = _crash_at(patched, 0)
        storage.samples.maintain(DAY_ONE + 2 * DAY)
    assert not (_series(tmp_path / "whole") / f"{FIRST}.late.csv").exists()
    assert steps[0] >= 7
    for step in range(1, steps[0] + 1):
        root = tmp_path / str(step)
        storage = _with_late_samples(root)
        with monkeypatch.context() as patched:
            _crash_at(patched, step)
            with pytest.raises(_Crash):
                storage.samples.maintain(DAY_ONE + 2 * DAY)
        after = _storage(root)
        assert after.samples.between(TOKEN, "cpu", EVERYTHING) == _expected_first_day(), step
        _assert_rollups_exact(after)
        # A late sample for the day after the crash: kept, whatever state the fold was left in.
        after.samples.append(TOKEN, [_cpu(5.0, DAY_ONE + 3.5)])
        expected = _expected_first_day()
        expected.insert(2, Point(5.0, DAY_ONE + 3.5))  # after the late 98.0, in arrival order
        assert after.samples.between(TOKEN, "cpu", EVERYTHING) == expected, step
        _assert_rollups_exact(after)
        after.samples.maintain(DAY_ONE + 2 * DAY)
        os.utime(_series(root) / f"{FIRST}.late.csv", (DAY_ONE + DAY, DAY_ONE + DAY))
        after.samples.maintain(DAY_ONE + 2 * DAY)
        assert not (_series(root) / f"{FIRST}.late.csv").exists(), step
        assert not (_series(root) / f"{FIRST}.folded").exists(), step
        assert after.samples.between(TOKEN, "cpu", EVERYTHING) == expected, step
        assert len(_assert_rollups_exact(after)) == 1_004
