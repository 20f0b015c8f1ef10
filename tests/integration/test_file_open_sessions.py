"""The file storage keeps the files it appends to open between appends (open_sessions.py): whatever
another storage on the same data dir (another process), a maintenance pass or a writer killed mid-write
does between two appends, every acknowledged sample is read back once, exactly, with its session's
status; and the files kept open stay within their budget.

Two FileStorage objects on one data dir are two processes to each other: their session locks are
separate flock()s and neither knows what the other keeps open."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfmon.adapters.filesystem import FileStorage
from perfmon.domain.errors import UnknownSession
from perfmon.domain.model import EVERYTHING, Point, Sample, Session, Username, moved_status
from perfmon.domain.rollups import DAY
from tests.killed import kill_when_it_says

TOKEN = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
DAY_ONE = 1_699_920_000.0  # a UTC midnight
AGENT = ("cpu", "mem", "swap", "load1", "load5", "load15", "disk", "disk_read", "disk_write", "net_rx")


def _storage(root: Path, open_files: int = 256) -> FileStorage:
    storage = FileStorage(root, fsync=False, open_files=open_files)
    if storage.sessions.get(TOKEN) is None:
        storage.sessions.add(Session(TOKEN, Username("alice"), 1.0, host="web-1"))
    return storage


def _agent_sample(moment: float, value: float) -> Sample:
    return Sample(moment, {metric: value + index for index, metric in enumerate(AGENT)})


def _points(storage: FileStorage, metric: str, token: str = TOKEN) -> list[Point]:
    return list(storage.samples.between(token, metric, EVERYTHING))


def test_appends_of_two_processes_interleaved_are_all_stored_once_with_their_status(tmp_path: Path) -> None:
    one, two = _storage(tmp_path), _storage(tmp_path)
    expected: list[Sample] = []
    status = None
    for step in range(40):
        # Runs of a few appends each, so that both also append with what they kept open still valid.
        writer = one if (step // 3) % 2 == 0 else two
        sample = _agent_sample(DAY_ONE + step, float(step))
        writer.samples.append(TOKEN, [sample], received_at=DAY_ONE + 100 + step)
        status = moved_status(status, [sample], DAY_ONE + 100 + step)
        expected.append(sample)
    for reader in (one, two, FileStorage(tmp_path, fsync=False)):
        for metric in AGENT:
            assert _points(reader, metric) == [Point(s.values[metric], s.taken_at) for s in expected]
        assert reader.samples.status([TOKEN]) == {TOKEN: status}


def test_a_write_killed_midway_in_another_process_is_rolled_back_by_this_one(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    storage.samples.append(TOKEN, [_agent_sample(DAY_ONE, 1.0)], received_at=DAY_ONE)
    storage.samples.append(TOKEN, [_agent_sample(DAY_ONE + 1, 2.0)], received_at=DAY_ONE + 1)
    # Another process appends twice (the second time with its files kept open) and is killed halfway
    # through the second write's segments: after the journal, before its end.
    code = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from perfmon.adapters.filesystem import FileStorage, edits
        from perfmon.domain.model import Sample

        storage = FileStorage(Path(sys.argv[1]), fsync=False)
        sample = lambda t, v: Sample(t, {m: v + i for i, m in enumerate(sys.argv[3].split(","))})
        storage.samples.append(sys.argv[2], [sample(float(sys.argv[4]) + 2, 3.0)], received_at=1.0)
        real = edits._make
        made = []
        def make(folder, edit, fsync, opened):
            real(folder, edit, fsync, opened)
            made.append(edit)
            if len(made) == 5:
                print("stopped", flush=True)
                import time
                time.sleep(60)
        edits._make = make
        storage.samples.append(sys.argv[2], [sample(float(sys.argv[4]) + 3, 4.0)], received_at=2.0)
        """
    )
    kill_when_it_says(code, [str(tmp_path), TOKEN, ",".join(AGENT), repr(DAY_ONE)], "stopped")

    # This storage still has the session's files open, as it left them before the other process wrote.
    storage.samples.append(TOKEN, [_agent_sample(DAY_ONE + 4, 5.0)], received_at=DAY_ONE + 4)
    values = [1.0, 2.0, 3.0, 5.0]
    for reader in (storage, FileStorage(tmp_path, fsync=False)):
        for index, metric in enumerate(AGENT):
            assert _points(reader, metric) == [
                Point(value + index, DAY_ONE + moment)
                for value, moment in zip(values, (0, 1, 2, 4), strict=True)
            ]
    for segment in (tmp_path / "sessions" / TOKEN).glob("*/*.csv"):
        assert segment.read_bytes().endswith(b"\n")


def test_a_day_compacted_by_another_process_takes_its_late_samples_beside_it(tmp_path: Path) -> None:
    writer, maintainer = _storage(tmp_path), _storage(tmp_path)
    writer.samples.append(TOKEN, [Sample(DAY_ONE + 10, {"cpu": 1.0})])
    writer.samples.append(TOKEN, [Sample(DAY_ONE + 20, {"cpu": 2.0})])
    maintainer.samples.maintain(DAY_ONE + 3 * DAY)  # compacts the closed day, removing its plain segment
    series = tmp_path / "sessions" / TOKEN / "cpu"
    assert not (series / "2023-11-14.csv").exists()

    writer.samples.append(TOKEN, [Sample(DAY_ONE + 15, {"cpu": 3.0})])

    assert (series / "2023-11-14.late.csv").exists()
    expected = [Point(1.0, DAY_ONE + 10), Point(3.0, DAY_ONE + 15), Point(2.0, DAY_ONE + 20)]
    assert _points(writer, "cpu") == expected
    assert _points(FileStorage(tmp_path, fsync=False), "cpu") == expected


def test_maintenance_in_the_same_process_between_appends_loses_nothing(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    for day in range(3):
        storage.samples.append(TOKEN, [Sample(DAY_ONE + day * DAY + 5, {"cpu": float(day)})])
        storage.samples.maintain(DAY_ONE + (day + 2) * DAY)
        storage.samples.append(TOKEN, [Sample(DAY_ONE + day * DAY + 1, {"cpu": 10.0 + day})])
    expected = sorted(
        [Point(float(day), DAY_ONE + day * DAY + 5) for day in range(3)]
        + [Point(10.0 + day, DAY_ONE + day * DAY + 1) for day in range(3)],
        key=lambda point: point.taken_at,
    )
    assert _points(storage, "cpu") == expected
    assert [bucket.count for bucket in storage.samples.rollups(TOKEN, "cpu", DAY, EVERYTHING)] == [2, 2, 2]


def test_a_session_whose_folder_is_deleted_is_unknown_though_its_files_were_open(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    storage.samples.append(TOKEN, [Sample(DAY_ONE, {"cpu": 1.0})])
    folder = tmp_path / "sessions" / TOKEN
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()
    with pytest.raises(UnknownSession):
        storage.samples.append(TOKEN, [Sample(DAY_ONE + 1, {"cpu": 2.0})])


def test_the_files_kept_open_stay_within_the_budget_and_are_closed_with_the_storage(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    storage = _storage(tmp_path, open_files=40)
    tokens = [f"7c9e6679-7425-40de-944b-e07fc1f90a{index:02x}" for index in range(12)]
    for token in tokens:
        storage.sessions.add(Session(token, Username("alice"), 1.0, host=f"h{token[-2:]}"))
    for moment in range(3):
        for token in tokens:
            storage.samples.append(
                token, [_agent_sample(DAY_ONE + moment, 1.0)], received_at=DAY_ONE + moment
            )
            assert storage.samples.open_files <= 40
    assert len(os.listdir("/proc/self/fd")) - before <= 40 + 5
    for token in tokens:
        assert [point.taken_at for point in _points(storage, "net_rx", token)] == [
            DAY_ONE,
            DAY_ONE + 1,
            DAY_ONE + 2,
        ]
    storage.samples.close()
    assert storage.samples.open_files == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 1),  # which process
            st.sampled_from(["append", "late", "maintain"]),
            st.sets(st.sampled_from(AGENT[:4]), min_size=1),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_any_interleaving_of_appends_and_maintenance_of_two_processes_reads_back_exactly(
    tmp_path_factory: object, steps: list[tuple[int, str, set[str]]]
) -> None:
    root: Path = tmp_path_factory.mktemp("data")  # type: ignore[attr-defined]
    storages = [_storage(root, open_files=8), _storage(root)]
    expected: dict[str, list[Point]] = {metric: [] for metric in AGENT[:4]}
    clock = DAY_ONE
    status = None
    for number, (which, action, metrics) in enumerate(steps):
        storage = storages[which]
        if action == "maintain":
            storage.samples.maintain(clock + 2 * DAY)
            continue
        # "late": a sample of a day already closed (and maybe compacted); else the next second.
        moment = clock - DAY if action == "late" else clock
        clock += 3600.0
        sample = Sample(moment, {metric: float(number) for metric in sorted(metrics)})
        storage.samples.append(TOKEN, [sample], received_at=clock)
        status = moved_status(status, [sample], clock)
        for metric in metrics:
            expected[metric].append(Point(float(number), moment))
    fresh = FileStorage(root, fsync=False)
    for reader in (*storages, fresh):
        for metric, points in expected.items():
            # Reads list samples in time order, equal times in arrival order.
            assert _points(reader, metric) == sorted(points, key=lambda point: point.taken_at)
        if status is not None:
            assert reader.samples.status([TOKEN]) == {TOKEN: status}
