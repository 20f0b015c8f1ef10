"""A batch is stored whole or not at all, even when the process dies in the middle of writing it.

A long write() can be cut short by a `kill -9`: the kernel stops between pages, leaving the batch's
first lines, each of them whole, in a file; a batch of several series or days writes several files,
and the kill can come between them. These tests make that happen on purpose: a child process appends
a batch through the real file storage, but one of its large writes stops halfway (as the kernel's would
at the signal) and the child is then killed. Readers, maintenance and the next append must see none of
that batch.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from perfmon.adapters.filesystem import FileStorage
from perfmon.domain.model import EVERYTHING, Point, Sample, SampleSummary, Session, Username
from perfmon.domain.rollups import DAY
from tests.killed import kill_when_it_says

pytestmark = pytest.mark.slow

TOKEN = "7c0a3d4e-2b1f-4a6c-9d8e-0f1a2b3c4d5e"
BATCH = 10_000
# A batch of BATCH samples from 2e9 on (2033-05-18 03:33:20 UTC), one a second: it ends on that day.
ONE_DAY = f"[Sample(2e9 + i, {{'cpu': 50.0}}) for i in range({BATCH})]"
# BATCH samples of two metrics, one every 3 s, crossing midnight: four segments, two days of two series.
TWO_DAYS = f"[Sample(2e9 + 64_000 + 3 * i, {{'cpu': 50.0, 'mem': 7.5}}) for i in range({BATCH})]"

# The child appends a batch; its `cut`-th write larger than a page (0 the first) stops after its first
# half, says so on stdout and waits to be killed: what the kernel leaves when SIGKILL arrives mid-write.
_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from perfmon.adapters.filesystem import FileStorage
    from perfmon.domain.model import Sample

    real_pwrite = os.pwrite
    large_writes = 0
    def pwrite_cut_short(fd, data, offset):
        global large_writes
        if len(data) <= 4096:
            return real_pwrite(fd, data, offset)
        large_writes += 1
        if large_writes <= int(sys.argv[4]):
            return real_pwrite(fd, data, offset)
        real_pwrite(fd, data[: len(data) // 2], offset)
        print("half written", flush=True)
        time.sleep(60)
    os.pwrite = pwrite_cut_short

    storage = FileStorage(Path(sys.argv[1]), fsync=sys.argv[3] == "always")
    storage.samples.append(sys.argv[2], {batch})
    """
)


def _storage_with_one_sample(data_dir: Path, fsync: bool) -> FileStorage:
    storage = FileStorage(data_dir, fsync=fsync)
    storage.sessions.add(Session(TOKEN, Username("crash"), created_at=1.0))
    storage.samples.append(TOKEN, [Sample(1e9, {"cpu": 1.0, "mem": 2.0})])
    return storage


def _kill_mid_batch(data_dir: Path, fsync: str, batch: str = ONE_DAY, cut: int = 0) -> None:
    kill_when_it_says(_CHILD.format(batch=batch), [str(data_dir), TOKEN, fsync, str(cut)], "half written")


def _lines(data_dir: Path) -> int:
    """The lines in every segment of the session: whole lines of a batch cut short count too."""
    folder = data_dir / "sessions" / TOKEN
    return sum(path.read_bytes().count(b"\n") for path in folder.glob("*/[0-9]*.csv"))


def _assert_only_the_first_sample(storage: FileStorage) -> None:
    assert list(storage.samples.between(TOKEN, "cpu", EVERYTHING)) == [Point(1.0, 1e9)]
    assert list(storage.samples.between(TOKEN, "mem", EVERYTHING)) == [Point(2.0, 1e9)]
    assert storage.samples.summaries([TOKEN], "cpu")[TOKEN] == SampleSummary(1, 1e9, 1e9)
    assert [bucket.count for bucket in storage.samples.rollups(TOKEN, "cpu", 60.0, EVERYTHING)] == [1]


@pytest.mark.parametrize("fsync", ["never", "always"])
def test_a_batch_cut_short_by_kill_9_is_not_seen_by_readers(tmp_path: Path, fsync: str) -> None:
    data_dir = tmp_path / "data"
    _storage_with_one_sample(data_dir, fsync == "always")

    _kill_mid_batch(data_dir, fsync)

    # The half-written batch's lines are in the file, whole: a reader must still not count them.
    assert _lines(data_dir) > 4 + BATCH // 4
    _assert_only_the_first_sample(FileStorage(data_dir, fsync=fsync == "always"))


@pytest.mark.parametrize("cut", [0, 1, 3], ids=["first-file", "second-file", "last-file"])
def test_a_batch_of_two_series_over_two_days_cut_short_anywhere_is_not_stored(
    tmp_path: Path, cut: int
) -> None:
    data_dir = tmp_path / "data"
    _storage_with_one_sample(data_dir, fsync=False)

    _kill_mid_batch(data_dir, "never", TWO_DAYS, cut)

    assert _lines(data_dir) > 4 + 1000  # half a segment at least
    after = FileStorage(data_dir, fsync=False)
    _assert_only_the_first_sample(after)
    # Maintenance rolls the unfinished batch back before it rolls anything up, so it never counts it.
    after.samples.maintain(2e9 + 10 * DAY)
    _assert_only_the_first_sample(after)
    assert not list((data_dir / "sessions" / TOKEN).glob("*/2033-*"))


def test_the_next_append_removes_a_batch_cut_short_and_lands_whole(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _storage_with_one_sample(data_dir, fsync=False)
    _kill_mid_batch(data_dir, "never", TWO_DAYS, cut=2)

    after = FileStorage(data_dir, fsync=False)
    after.samples.append(TOKEN, [Sample(1e9 + 1, {"cpu": 2.0}), Sample(1e9 + 2, {"cpu": 3.0})])

    expected = [Point(1.0, 1e9), Point(2.0, 1e9 + 1), Point(3.0, 1e9 + 2)]
    assert list(after.samples.between(TOKEN, "cpu", EVERYTHING)) == expected
    # The files themselves are clean again: a person opening them sees exactly the stored samples.
    folder = data_dir / "sessions" / TOKEN
    csv = b"cpu,time\n1.0,1000000000.0\n2.0,1000000001.0\n3.0,1000000002.0\n"
    assert (folder / "cpu" / "2001-09-09.csv").read_bytes() == csv
    assert sorted(path.name for path in folder.glob("*/[0-9]*")) == ["2001-09-09.csv", "2001-09-09.csv"]
    assert (folder / "session.journal").read_bytes() == b""  # no write left unfinished
