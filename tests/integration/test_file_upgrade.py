"""A data dir written by the release before the time-partitioned layout is upgraded in place when the
file storage opens it, with nothing lost that the old release returned, crash-safely and once.

The old layout is written here by hand, exactly as the old code wrote it: `sessions/<token>.csv` with
the header `cpu,time` and `cpu,time` lines in repr(), `sessions/<token>.pending` holding the file's size
before a batch that never finished, users and session records as they still are.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import tracemalloc
from pathlib import Path

import pytest
import requests

from perfmon.adapters.filesystem import FileStorage
from perfmon.adapters.filesystem.layout import user_key
from perfmon.adapters.password_hasher import Argon2PasswordHasher
from perfmon.domain.model import EVERYTHING, Point, Sample, SampleSummary, TimeRange, Username
from perfmon.domain.rollups import DAY, rollup
from tests.servers import start_server_process

TOKEN = "5d2c6b1a-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
EMPTY = "6e3d7c2b-4f5a-4b6c-9d7e-8f9a0b1c2d3e"
NAME = "old-timer"
# 2023-11-14 23:59:58 UTC: the samples cross midnight.
LATE_EVENING = 1_700_006_398.0

# What the old reader returned: arrival order, one sample out of time order, -0.0 and two days.
KEPT = [
    (12.5, LATE_EVENING),
    (0.30000000000000004, LATE_EVENING + 1.25),
    (7.0, LATE_EVENING - 30.0),
    (-0.0, LATE_EVENING + 2.0),
    (100.0, LATE_EVENING + 3.5),
]
# Lines the old reader skipped (a negative cpu was no sample then), and a batch that never finished.
DAMAGED = [b"secret,words", b"nan,1699999200.0", b"-1.0,1699999200.0", b"", b"1.0,2.0,3.0"]
UNFINISHED = [(55.0, LATE_EVENING + 10.0), (56.0, LATE_EVENING + 11.0)]


def _line(cpu: float, moment: float) -> bytes:
    return f"{cpu!r},{moment!r}\n".encode()


def write_old_data_dir(root: Path, password_hash: str = "argon2id-hash") -> None:
    """A data dir as the old release left it after a crash in the middle of a batch."""
    for folder in ("users", "sessions", "tmp"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    name = Username(NAME)
    record = {"name": NAME, "password_hash": password_hash}
    (root / "users" / f"{user_key(name)}.json").write_text(json.dumps(record))
    (root / "users" / f"{user_key(name)}.sessions").write_text(f"{EMPTY}\n{TOKEN}\n")
    for token, created in ((EMPTY, 1_699_990_000.0), (TOKEN, 1_699_990_001.0)):
        (root / "sessions" / f"{token}.json").write_text(json.dumps({"user": NAME, "created_at": created}))
    (root / "sessions" / f"{EMPTY}.csv").write_bytes(b"cpu,time\n")
    lines = [
        _line(*KEPT[0]),
        _line(*KEPT[1]),
        DAMAGED[0] + b"\n",
        _line(*KEPT[2]),
        *(d + b"\n" for d in DAMAGED[1:]),
    ]
    committed = b"cpu,time\n" + b"".join(lines) + _line(*KEPT[3]) + _line(*KEPT[4])
    # The unfinished batch: its lines are whole in the file, and its journal names where it began; then a
    # single post torn by the crash.
    content = committed + b"".join(_line(*pair) for pair in UNFINISHED) + b"42.0,16999"
    (root / "sessions" / f"{TOKEN}.csv").write_bytes(content)
    (root / "sessions" / f"{TOKEN}.pending").write_bytes(f"{len(committed)}\n".encode())


def _assert_everything_is_there(storage: FileStorage) -> None:
    series = storage.samples.between(TOKEN, "cpu", EVERYTHING)
    assert series == [Point(v, t) for v, t in sorted(KEPT, key=lambda pair: pair[1])]
    assert math.copysign(1.0, series.values[3]) == -1.0  # -0.0 stays -0.0
    summary = storage.samples.summaries([TOKEN, EMPTY], "cpu")
    assert summary[TOKEN] == SampleSummary(len(KEPT), LATE_EVENING - 30.0, LATE_EVENING + 3.5)
    assert EMPTY not in summary
    for width in (60.0, 3600.0, DAY):
        assert storage.samples.rollups(TOKEN, "cpu", width, EVERYTHING) == rollup(series, width)
    assert storage.samples.metrics(TOKEN) == ["cpu"]
    assert storage.sessions.for_user(Username(NAME))[0].token == TOKEN


def test_an_old_data_dir_is_upgraded_with_everything_the_old_release_returned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    write_old_data_dir(root)

    with caplog.at_level(logging.INFO, logger="perfmon"):
        storage = FileStorage(root, fsync=True)

    _assert_everything_is_there(storage)
    sessions = root / "sessions"
    assert sorted(path.name for path in sessions.iterdir()) == sorted(
        [f"{EMPTY}.json", EMPTY, f"{TOKEN}.json", TOKEN]
    )
    # One segment per UTC day, the first one flagged as out of time order; nothing else of the old files.
    assert sorted(path.name for path in (sessions / TOKEN / "cpu").iterdir()) == [
        "2023-11-14.csv",
        "2023-11-14.unsorted",
        "2023-11-15.csv",
    ]
    assert (sessions / TOKEN / "cpu" / "2023-11-15.csv").read_bytes() == b"cpu,time\n" + b"".join(
        _line(*pair) for pair in KEPT[3:]
    )
    [line] = [record.getMessage() for record in caplog.records if "upgraded" in record.getMessage()]
    assert "upgraded 2 sessions" in line and "5 unreadable lines" in line
    assert TOKEN[:8] not in caplog.text and EMPTY[:8] not in caplog.text and "secret" not in caplog.text


def test_an_upgraded_data_dir_takes_samples_and_is_maintained_like_a_new_one(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_old_data_dir(root)
    storage = FileStorage(root, fsync=False)
    storage.samples.append(TOKEN, [Sample(LATE_EVENING + 60.0, {"cpu": 1.0, "mem": 2.0})])
    storage.samples.maintain(LATE_EVENING + 3 * DAY)
    series = storage.samples.between(TOKEN, "cpu", EVERYTHING)
    assert len(series) == len(KEPT) + 1
    assert storage.samples.rollups(TOKEN, "cpu", 60.0, EVERYTHING) == rollup(series, 60.0)
    assert (root / "sessions" / TOKEN / "cpu" / "2023-11-14.csv.xz").exists()
    assert storage.samples.between(TOKEN, "cpu", TimeRange(LATE_EVENING + 1, LATE_EVENING + 2.5)) == [
        Point(0.30000000000000004, LATE_EVENING + 1.25),
        Point(-0.0, LATE_EVENING + 2.0),
    ]


def test_opening_the_data_dir_again_upgrades_nothing_twice(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_old_data_dir(root)
    FileStorage(root, fsync=False)
    _assert_everything_is_there(FileStorage(root, fsync=False))


def test_an_upgrade_cut_short_before_its_rename_starts_again(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_old_data_dir(root)
    # What a crash while building the new session folder leaves: a part of it, under tmp/.
    building = root / "tmp" / f"upgrade-{TOKEN}" / "cpu"
    building.mkdir(parents=True)
    (building / "2023-11-14.csv").write_bytes(b"cpu,time\n12.5,")
    _assert_everything_is_there(FileStorage(root, fsync=False))
    assert list((root / "tmp").iterdir()) == []


def test_an_upgrade_cut_short_after_its_rename_only_removes_the_old_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_old_data_dir(root)
    old = root / "sessions" / f"{TOKEN}.csv"
    kept = old.read_bytes()
    pending = (root / "sessions" / f"{TOKEN}.pending").read_bytes()
    FileStorage(root, fsync=False)
    # The crash came after the new folder was renamed into place, before the old files were unlinked.
    old.write_bytes(kept)
    (root / "sessions" / f"{TOKEN}.pending").write_bytes(pending)
    _assert_everything_is_there(FileStorage(root, fsync=False))
    assert not old.exists() and not (root / "sessions" / f"{TOKEN}.pending").exists()


def _open_storage(root: Path) -> None:
    FileStorage(root, fsync=False)


def test_two_processes_starting_at_once_upgrade_each_session_once(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_old_data_dir(root)
    spawn = multiprocessing.get_context("spawn")
    starters = [spawn.Process(target=_open_storage, args=(root,)) for _ in range(2)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(timeout=60)
    assert [starter.exitcode for starter in starters] == [0, 0]
    _assert_everything_is_there(FileStorage(root, fsync=False))


@pytest.mark.slow
@pytest.mark.slow
def test_a_big_old_samples_file_is_upgraded_a_chunk_at_a_time(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_old_data_dir(root)
    # 700,000 samples over 8 days (16 MB of text, over 100 MB as Python floats), in arrival order but
    # for one out of time order far into the file, and an unfinished batch and torn line at its end.
    big = root / "sessions" / f"{TOKEN}.csv"
    with open(big, "wb") as file:
        file.write(b"cpu,time\n")
        for block in range(7):
            moments = (1_700_000_000.0 + block * 100_000 + i + 0.125 for i in range(100_000))
            file.write(b"".join(_line(float(block), moment) for moment in moments))
        file.write(_line(9.0, 1_700_000_000.5))
        committed = file.tell()
        file.write(_line(*UNFINISHED[0]) + b"42.0,16999")
    (root / "sessions" / f"{TOKEN}.pending").write_bytes(f"{committed}\n".encode())
    tracemalloc.start()
    try:
        storage = FileStorage(root, fsync=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20
    series = storage.samples.between(TOKEN, "cpu", EVERYTHING)
    assert len(series) == 700_001
    assert (series.values[1], series.taken_at[1]) == (9.0, 1_700_000_000.5)
    assert storage.samples.summaries([TOKEN], "cpu")[TOKEN].count == 700_001
    cpu = root / "sessions" / TOKEN / "cpu"
    assert sorted(path.name for path in cpu.glob("*.unsorted")) == ["2023-11-14.unsorted"]


def test_a_server_started_on_an_old_data_dir_serves_its_samples_over_http(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_old_data_dir(root, Argon2PasswordHasher().hash("pw"))
    server = start_server_process("--storage", "file", "--data-dir", str(root))
    try:
        read = requests.get(f"{server.url}/cpu", params={"hash": TOKEN}, timeout=10)
        listed = requests.get(f"{server.url}/sessions", params={"hash": TOKEN}, timeout=10)
        login = requests.post(f"{server.url}/login", json={"user": NAME, "passwd": "pw"}, timeout=10)
        stepped = requests.get(f"{server.url}/cpu", params={"hash": TOKEN, "step": 60}, timeout=10)
    finally:
        assert server.stop() == 0
    expected = [{"cpu": cpu, "timestamp": moment} for cpu, moment in sorted(KEPT, key=lambda pair: pair[1])]
    assert (read.status_code, read.json()) == (200, {"payload": expected})
    assert login.status_code == 200
    assert [(s["session"], s["samples"]) for s in listed.json()["payload"]] == [(TOKEN, 5), (EMPTY, 0)]
    assert sum(bucket["count"] for bucket in stepped.json()["payload"]) == len(KEPT)
    log = "".join(server.log)
    assert "upgraded 2 sessions" in log and TOKEN not in log and TOKEN[:8] not in log
