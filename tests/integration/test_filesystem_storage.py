"""What only the file storage promises: its files, its crash tolerance, its races across processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import resource
import signal
import uuid
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from perfmon.adapters.filesystem import FileStorage
from perfmon.domain.errors import StorageUnavailable, UnknownSession, UsernameTaken
from perfmon.domain.model import EVERYTHING, Point, Sample, Session, User, Username

TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"
NASTY_NAMES = [
    "../../etc/passwd",
    "/abs",
    "..",
    ".",
    "a/../../b",
    "back\\slash",
    "com,ma",
    "-rf",
    "*",
    " ",
    "ü" * 128,
    "😀" * 128,
    "a" * 128,
    "CON",
    "~",
    "x~" + "0" * 64,
]
# Spawn, not fork: a forked child of a threaded pytest can inherit a held lock.
PROCESSES = multiprocessing.get_context("spawn")


def _storage(tmp_path: Path, fsync: bool = False) -> FileStorage:
    return FileStorage(tmp_path / "data", fsync=fsync)


def _open_session(storage: FileStorage, token: str = TOKEN, name: str = "alice") -> None:
    storage.users.add(User(Username(name), "argon2id-hash"))
    storage.sessions.add(Session(token=token, user=Username(name), created_at=1_700_000_000.5))


def _cpu(value: float, moment: float) -> Sample:
    return Sample(moment, {"cpu": value})


def _csv(tmp_path: Path, token: str = TOKEN, day: str = "1970-01-01", metric: str = "cpu") -> Path:
    """The segment of the series' samples of the UTC day."""
    return tmp_path / "data" / "sessions" / token / metric / f"{day}.csv"


def _cpu_series(storage: FileStorage, token: str = TOKEN) -> list[Point]:
    return list(storage.samples.between(token, "cpu", EVERYTHING))


def test_files_of_nasty_names_stay_inside_the_data_dir(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    for name in NASTY_NAMES:
        token = str(uuid.uuid4())
        _open_session(storage, token, name)
        storage.samples.append(token, [_cpu(1.0, 2.0)])
    for name in NASTY_NAMES:
        assert storage.users.get(Username(name)) == User(Username(name), "argon2id-hash")
    data_dir = tmp_path / "data"
    created = [Path(root, file) for root, _, files in os.walk(tmp_path) for file in files]
    # Per user .json and .sessions; per session .json, its folder's lock and journal, a segment of cpu
    # and the rolled.csv that names it (no status.csv: the write tells no receive time).
    assert len(created) == 7 * len(NASTY_NAMES)
    for path in created:
        assert path.resolve().is_relative_to(data_dir.resolve())
        assert len(path.name.encode()) < 255
    user_file = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_-]{0,31})?~[0-9a-f]{64}\.(json|sessions)")
    assert all(user_file.fullmatch(path.name) for path in (data_dir / "users").iterdir())


def test_a_user_file_name_shows_a_slug_of_the_name(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    storage.users.add(User(Username("Ada Lovelace/../x"), "h"))
    [record] = (tmp_path / "data" / "users").glob("*.json")
    assert record.name.startswith("AdaLovelacex~")


def test_samples_are_csv_files_a_person_can_open_one_per_series_and_utc_day(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    storage.samples.append(
        TOKEN,
        [Sample(1_700_000_000.123456789, {"cpu": 0.1 + 0.2, "mem": -1.5}), Sample(0.0, {"cpu": 5e-324})],
    )
    storage.samples.append(TOKEN, [_cpu(100.0, 3.0)])
    day = "2023-11-14"
    assert _csv(tmp_path, day=day).read_bytes() == b"cpu,time\n0.30000000000000004,1700000000.1234567\n"
    assert _csv(tmp_path, day="1970-01-01").read_bytes() == b"cpu,time\n5e-324,0.0\n100.0,3.0\n"
    assert _csv(tmp_path, day=day, metric="mem").read_bytes() == b"mem,time\n-1.5,1700000000.1234567\n"


def test_user_sessions_are_listed_in_the_users_folder(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    other = str(uuid.uuid4())
    storage.sessions.add(Session(token=other, user=Username("alice"), created_at=2.0))
    [listing] = (tmp_path / "data" / "users").glob("*.sessions")
    assert listing.read_text() == f"{TOKEN}\n{other}\n"


def test_torn_last_line_is_ignored_then_cut_off_by_the_next_append(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    storage.samples.append(TOKEN, [_cpu(1.0, 1.0)])
    # A crash tore the line: the server that writes next is another process (a storage opened anew),
    # which knows nothing of the files (it keeps none open).
    with _csv(tmp_path).open("ab") as file:
        file.write(b"12.5,17")
    storage = _storage(tmp_path)
    assert _cpu_series(storage) == [Point(1.0, 1.0)]
    assert storage.samples.summaries([TOKEN], "cpu")[TOKEN].count == 1
    storage.samples.append(TOKEN, [_cpu(2.0, 2.0)])
    assert _csv(tmp_path).read_bytes() == b"cpu,time\n1.0,1.0\n2.0,2.0\n"
    assert _cpu_series(storage) == [Point(1.0, 1.0), Point(2.0, 2.0)]


def test_a_file_emptied_by_a_crash_gets_its_header_back(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    storage.samples.append(TOKEN, [_cpu(1.0, 1.0)])
    _csv(tmp_path).write_bytes(b"")
    storage = _storage(tmp_path)  # the server after the crash
    storage.samples.append(TOKEN, [_cpu(2.0, 2.0)])
    assert _csv(tmp_path).read_bytes() == b"cpu,time\n2.0,2.0\n"


def test_garbage_lines_are_skipped_with_one_warning_per_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    storage.samples.append(TOKEN, [_cpu(1.0, 1.0)])
    garbage = [b"\0" * 20, b"secret,words", b"1.0,2.0,3.0", b"nan,5.0", b"1.0,-5.0", b"1.0", b""]
    _csv(tmp_path).write_bytes(b"cpu,time\n1.0,1.0\n" + b"\n".join(garbage) + b"\n3.0,3.0\n")
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert _cpu_series(storage) == [Point(1.0, 1.0), Point(3.0, 3.0)]
    [warning] = caplog.records
    assert "7 unreadable lines" in warning.getMessage()
    assert TOKEN[:8] not in warning.getMessage() and "secret" not in warning.getMessage()


def test_storage_opened_again_on_the_same_dir_finds_everything(tmp_path: Path) -> None:
    _open_session(_storage(tmp_path, fsync=True))
    _storage(tmp_path, fsync=True).samples.append(TOKEN, [Sample(5.0, {"cpu": 4.0, "mem": 3.0})])
    again = _storage(tmp_path)
    assert again.users.get(Username("alice")) == User(Username("alice"), "argon2id-hash")
    assert again.sessions.get(TOKEN) == Session(TOKEN, Username("alice"), 1_700_000_000.5)
    assert _cpu_series(again) == [Point(4.0, 5.0)]
    assert again.samples.metrics(TOKEN) == ["cpu", "mem"]


@pytest.mark.parametrize("token", [TOKEN.upper(), "{" + TOKEN + "}", TOKEN.replace("-", ""), "../x", ""])
def test_a_token_that_is_not_a_canonical_uuid_never_becomes_a_path(tmp_path: Path, token: str) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    assert storage.sessions.get(token) is None
    with pytest.raises(ValueError, match="canonical"):
        storage.samples.append(token, [_cpu(1.0, 1.0)])
    with pytest.raises(ValueError, match="canonical"):
        storage.samples.between(token, "cpu", EVERYTHING)
    with pytest.raises(ValueError, match="canonical"):
        storage.samples.rollups(token, "cpu", 60.0, EVERYTHING)


def test_appending_to_an_unknown_session_creates_no_file(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    unknown = str(uuid.uuid4())
    with pytest.raises(UnknownSession):
        storage.samples.append(unknown, [_cpu(1.0, 1.0)])
    assert os.listdir(tmp_path / "data" / "sessions") == []


def _register(data_dir: Path, start: Barrier, index: int) -> None:
    storage = FileStorage(data_dir, fsync=False)
    start.wait()
    try:
        storage.users.add(User(Username("racer"), f"hash-{index}"))
    except UsernameTaken:
        raise SystemExit(3) from None


def test_concurrent_registrations_from_processes_let_exactly_one_win(tmp_path: Path) -> None:
    start = PROCESSES.Barrier(4)
    racers = [PROCESSES.Process(target=_register, args=(tmp_path / "data", start, i)) for i in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=30)
    assert sorted(racer.exitcode for racer in racers) == [0, 3, 3, 3]
    winner = racers.index(next(racer for racer in racers if racer.exitcode == 0))
    assert _storage(tmp_path).users.get(Username("racer")) == User(Username("racer"), f"hash-{winner}")
    assert os.listdir(tmp_path / "data" / "tmp") == []


def _post_samples(data_dir: Path, start: Barrier, index: int) -> None:
    storage = FileStorage(data_dir, fsync=False)
    start.wait()
    for i in range(200):
        storage.samples.append(TOKEN, [_cpu(float(index), 1_700_000_000.0 + i / 3)])


def test_concurrent_appends_from_processes_write_whole_lines(tmp_path: Path) -> None:
    _open_session(_storage(tmp_path))
    start = PROCESSES.Barrier(4)
    writers = [PROCESSES.Process(target=_post_samples, args=(tmp_path / "data", start, i)) for i in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=30)
    assert [writer.exitcode for writer in writers] == [0] * 4
    header, *lines = _csv(tmp_path, day="2023-11-14").read_bytes().split(b"\n")
    assert header == b"cpu,time" and lines[-1] == b""
    written = {(float(i), 1_700_000_000.0 + n / 3) for i in range(4) for n in range(200)}
    assert sorted(tuple(map(float, line.split(b","))) for line in lines[:-1]) == sorted(written)
    assert len(_cpu_series(_storage(tmp_path))) == 800


def _append_past_a_file_size_limit(data_dir: Path, room: int) -> None:
    # RLIMIT_FSIZE makes the kernel cut a write short even for root: the real shape of a disk filling up.
    storage = FileStorage(data_dir, fsync=False)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    size = os.path.getsize(data_dir / "sessions" / TOKEN / "cpu" / "1970-01-01.csv")
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + room, hard))
    try:
        storage.samples.append(TOKEN, [_cpu(float(i), float(i)) for i in range(10)])
    except StorageUnavailable:
        raise SystemExit(3) from None


@pytest.mark.parametrize("room", [0, 25], ids=["no-room", "room-for-part-of-the-batch"])
def test_a_short_write_stores_none_of_the_batch(tmp_path: Path, room: int) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    storage.samples.append(TOKEN, [_cpu(1.0, 1.0)])
    child = PROCESSES.Process(target=_append_past_a_file_size_limit, args=(tmp_path / "data", room))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 3
    assert _csv(tmp_path).read_bytes() == b"cpu,time\n1.0,1.0\n"
    storage.samples.append(TOKEN, [_cpu(2.0, 2.0)])
    assert _cpu_series(storage) == [Point(1.0, 1.0), Point(2.0, 2.0)]


def test_a_samples_file_that_cannot_be_opened_is_unavailable_until_repaired(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    storage.samples.append(TOKEN, [_cpu(1.0, 1.0)])
    aside = _csv(tmp_path).rename(tmp_path / "aside.csv")
    _csv(tmp_path).mkdir()  # root ignores permissions, not a directory where a file should be
    # A server that has the file open already writes on (open_sessions.py): one started now cannot.
    storage = _storage(tmp_path)
    with pytest.raises(StorageUnavailable):
        storage.samples.append(TOKEN, [_cpu(1.0, 1.0)])
    with pytest.raises(StorageUnavailable):
        storage.samples.between(TOKEN, "cpu", EVERYTHING)
    with pytest.raises(StorageUnavailable):
        storage.samples.maintain(1e9)
    _csv(tmp_path).rmdir()
    aside.rename(_csv(tmp_path))
    storage.samples.append(TOKEN, [_cpu(1.0, 1.0)])
    assert _cpu_series(storage) == [Point(1.0, 1.0), Point(1.0, 1.0)]


def test_a_broken_temp_folder_makes_registration_unavailable_until_repaired(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    temp_folder = tmp_path / "data" / "tmp"
    temp_folder.rmdir()
    temp_folder.write_bytes(b"")
    with pytest.raises(StorageUnavailable):
        storage.users.add(User(Username("alice"), "h"))
    with pytest.raises(StorageUnavailable):
        storage.check()
    temp_folder.unlink()
    temp_folder.mkdir()
    storage.check()
    _open_session(storage)
    assert storage.sessions.get(TOKEN) is not None


def test_a_vanished_data_dir_is_an_outage_not_an_unknown_user(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    (tmp_path / "data").rename(tmp_path / "unmounted")
    with pytest.raises(StorageUnavailable):
        storage.users.get(Username("alice"))
    with pytest.raises(StorageUnavailable):
        storage.sessions.get(str(uuid.uuid4()))
    with pytest.raises(StorageUnavailable):
        storage.sessions.add(Session(str(uuid.uuid4()), Username("alice"), 1.0))
    (tmp_path / "unmounted").rename(tmp_path / "data")
    assert storage.users.get(Username("alice")) is not None


def test_a_data_dir_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "data").write_bytes(b"")
    with pytest.raises(StorageUnavailable):
        _storage(tmp_path)


def test_sessions_of_a_user_skip_tokens_without_a_record_and_survive_a_torn_line(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    _open_session(storage)
    [listing] = (tmp_path / "data" / "users").glob("*.sessions")
    # A crash between listing a token and publishing its record, then a line torn by a power cut.
    with listing.open("ab") as file:
        file.write(f"{uuid.uuid4()}\n{str(uuid.uuid4())[:10]}".encode())
    later = Session(token=str(uuid.uuid4()), user=Username("alice"), created_at=1_700_000_001.0)
    storage.sessions.add(later)
    assert storage.sessions.for_user(Username("alice")) == [
        later,
        Session(TOKEN, Username("alice"), 1_700_000_000.5),
    ]
