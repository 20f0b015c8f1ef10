"""What only the file storage promises for part 3: a session's host in its record (none for a record of
an earlier release), its status in `status.csv`, moved in the same journalled write as its samples, so
that a crash, another storage on the same data dir or a restart never leaves the two apart."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfmon.adapters.filesystem import FileStorage, status_file
from perfmon.domain.model import (
    EVERYTHING,
    Point,
    Sample,
    Session,
    SessionStatus,
    Username,
    moved_status,
)
from tests.killed import kill_when_it_says

TOKEN = "5b2d8f0e-3c4a-4e6b-8a1c-9d0e2f4a6b8c"
NOON = 1_699_963_200.0


def _storage(root: Path, fsync: bool = False) -> FileStorage:
    storage = FileStorage(root, fsync=fsync)
    if storage.sessions.get(TOKEN) is None:
        storage.sessions.add(Session(TOKEN, Username("alice"), 1.0, host="web-1"))
    return storage


def test_status_and_host_survive_a_restart(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    storage.samples.append(TOKEN, [Sample(NOON, {"cpu": -0.0, "mem": 5e-324})], received_at=NOON + 1)
    storage.samples.append(TOKEN, [Sample(NOON - 5, {"cpu": 1.79e308})], received_at=NOON + 2)

    reopened = FileStorage(tmp_path, fsync=True)

    assert reopened.sessions.get(TOKEN) == Session(TOKEN, Username("alice"), 1.0, "web-1")
    status = reopened.samples.status([TOKEN])[TOKEN]
    assert status == SessionStatus(NOON + 2, NOON - 5, {"cpu": Point(-0.0, NOON), "mem": Point(5e-324, NOON)})
    assert str(status.latest["cpu"].value) == "-0.0"
    # It goes on from what the file holds.
    reopened.samples.append(TOKEN, [Sample(NOON + 1, {"temp": 40.0})], received_at=NOON + 3)
    assert FileStorage(tmp_path, fsync=False).samples.status([TOKEN])[TOKEN] == SessionStatus(
        NOON + 3,
        NOON - 5,
        {"cpu": Point(-0.0, NOON), "mem": Point(5e-324, NOON), "temp": Point(40.0, NOON + 1)},
    )


def test_a_status_rewritten_shorter_keeps_no_stale_bytes(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    storage.samples.append(TOKEN, [Sample(NOON + 0.123456789, {"cpu": 1.2345678901234567e-300})], NOON + 0.1)
    storage.samples.append(TOKEN, [Sample(NOON + 1, {"cpu": 1.0})], NOON + 0.2)

    status = SessionStatus(NOON + 0.2, NOON + 0.123456789, {"cpu": Point(1.0, NOON + 1)})
    assert storage.samples.status([TOKEN]) == {TOKEN: status}
    assert (tmp_path / "sessions" / TOKEN / status_file.STATUS).read_bytes() == status_file.text(status)


def test_a_host_name_is_never_part_of_a_path(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path, fsync=False)
    storage.sessions.add(Session(TOKEN, Username("alice"), 1.0, host="../../escape/me"))
    storage.samples.append(TOKEN, [Sample(NOON, {"cpu": 1.0})], received_at=NOON)

    names = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")}
    assert not any("escape" in name for name in names)
    assert not (tmp_path.parent / "escape").exists()
    assert json.loads((tmp_path / "sessions" / f"{TOKEN}.json").read_bytes())["host"] == "../../escape/me"


def test_a_session_record_of_the_previous_release_has_no_host(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path, fsync=False)
    # What the release before hosts wrote: no "host" in the record, no status.csv beside its samples.
    storage.sessions.add(Session(TOKEN, Username("alice"), 1.0))
    record = tmp_path / "sessions" / f"{TOKEN}.json"
    record.write_text(json.dumps({"user": "alice", "created_at": 1.0}))
    storage.samples.append(TOKEN, [Sample(NOON, {"cpu": 1.0})], received_at=NOON)
    (tmp_path / "sessions" / TOKEN / status_file.STATUS).unlink()

    reopened = FileStorage(tmp_path, fsync=False)

    assert reopened.sessions.get(TOKEN) == Session(TOKEN, Username("alice"), 1.0, None)
    assert [session.host for session in reopened.sessions.for_user(Username("alice"))] == [None]
    # No status until its next write, which counts from there on; its samples are all still read.
    assert reopened.samples.status([TOKEN]) == {}
    reopened.samples.append(TOKEN, [Sample(NOON + 10, {"cpu": 2.0})], received_at=NOON + 11)
    assert reopened.samples.status([TOKEN]) == {
        TOKEN: SessionStatus(NOON + 11, NOON + 10, {"cpu": Point(2.0, NOON + 10)})
    }
    assert list(reopened.samples.between(TOKEN, "cpu", EVERYTHING)) == [
        Point(1.0, NOON),
        Point(2.0, NOON + 10),
    ]


def test_a_damaged_status_file_is_no_status_and_the_next_write_makes_it_anew(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    storage.samples.append(TOKEN, [Sample(NOON, {"cpu": 1.0})], received_at=NOON)
    (tmp_path / "sessions" / TOKEN / status_file.STATUS).write_bytes(b"seen,first\n1,nope\n")
    # Damaged while no server ran: the next one opens the storage anew (a running one keeps it open).
    storage = _storage(tmp_path)

    assert storage.samples.status([TOKEN]) == {}
    storage.samples.append(TOKEN, [Sample(NOON + 1, {"cpu": 2.0})], received_at=NOON + 1)
    assert storage.samples.status([TOKEN])[TOKEN] == SessionStatus(
        NOON + 1, NOON + 1, {"cpu": Point(2.0, NOON + 1)}
    )


_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@given(
    seen=st.none() | _FLOATS,
    first=_FLOATS,
    latest=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True),
        st.builds(Point, _FLOATS, _FLOATS),
        min_size=1,
        max_size=20,
    ),
)
def test_the_status_file_reads_back_bit_for_bit(
    seen: float | None, first: float, latest: dict[str, Point]
) -> None:
    status = SessionStatus(seen, first, latest)

    parsed = status_file.parse(status_file.text(status))

    assert parsed == status
    assert parsed is not None
    assert [repr(point.value) for point in parsed.latest.values()] == [
        repr(latest[metric].value) for metric in parsed.latest
    ]


def test_two_storages_on_one_data_dir_lose_no_status_update(tmp_path: Path) -> None:
    _storage(tmp_path)
    writes = 60

    def write(metric: str, offset: float) -> None:
        storage = FileStorage(tmp_path, fsync=False)
        for index in range(writes):
            moment = NOON + 2 * index + offset
            storage.samples.append(
                TOKEN, [Sample(moment, {"cpu": moment, metric: moment})], received_at=moment
            )

    threads = [threading.Thread(target=write, args=args) for args in (("a", 0.0), ("b", 1.0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    status = FileStorage(tmp_path, fsync=False).samples.status([TOKEN])[TOKEN]
    last_a, last_b = NOON + 2 * (writes - 1), NOON + 2 * (writes - 1) + 1
    # A lost update would drop one writer's metric, or its latest sample.
    assert status.latest == {
        "cpu": Point(last_b, last_b),
        "a": Point(last_a, last_a),
        "b": Point(last_b, last_b),
    }
    assert status.first == NOON
    assert status.seen in (last_a, last_b)


# The child appends a batch through the real storage and stops where `argv[3]` says: halfway through
# writing status.csv (samples written, status torn), or once every file is written but before the
# journal is emptied. It says so, and waits to be killed.
_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from perfmon.adapters.filesystem import FileStorage, journal, status_file
    from perfmon.domain.model import Sample

    def stop():
        print("stopped", flush=True)
        time.sleep(60)

    if sys.argv[3] == "status":
        real_pwrite = os.pwrite
        def pwrite(fd, data, offset):
            if os.readlink(f"/proc/self/fd/{fd}").endswith(status_file.STATUS):
                real_pwrite(fd, data[: len(data) // 2], offset)
                stop()
            return real_pwrite(fd, data, offset)
        os.pwrite = pwrite
    else:
        journal.end = lambda *_, **__: stop()

    storage = FileStorage(Path(sys.argv[1]), fsync=True)
    storage.samples.append(
        sys.argv[2],
        [Sample(1_699_963_300.0 + i, {"cpu": 99.0, "new_metric": float(i)}) for i in range(500)],
        received_at=1_699_964_000.0,
    )
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["status", "journal end"])
@pytest.mark.parametrize("earlier_write", [True, False])
def test_a_write_killed_midway_leaves_status_and_samples_together(
    tmp_path: Path, where: str, earlier_write: bool
) -> None:
    storage = _storage(tmp_path, fsync=True)
    if earlier_write:
        storage.samples.append(TOKEN, [Sample(NOON, {"cpu": 1.0})], received_at=NOON + 1)
    before = storage.samples.status([TOKEN])

    kill_when_it_says(_CHILD, [str(tmp_path), TOKEN, where], "stopped")

    # Readers see the committed state while the write is unfinished (nobody has rolled it back yet).
    reader = FileStorage(tmp_path, fsync=True)
    expected_cpu = [Point(1.0, NOON)] if earlier_write else []
    assert reader.samples.status([TOKEN]) == before
    assert list(reader.samples.between(TOKEN, "cpu", EVERYTHING)) == expected_cpu
    assert list(reader.samples.between(TOKEN, "new_metric", EVERYTHING)) == []
    # The next write rolls the unfinished one back and moves the committed status.
    reader.samples.append(TOKEN, [Sample(NOON + 5, {"cpu": 2.0})], received_at=NOON + 6)
    expected = moved_status(before.get(TOKEN), [Sample(NOON + 5, {"cpu": 2.0})], NOON + 6)
    assert reader.samples.status([TOKEN]) == {TOKEN: expected}
    assert list(reader.samples.between(TOKEN, "cpu", EVERYTHING)) == [*expected_cpu, Point(2.0, NOON + 5)]
    assert reader.samples.metrics(TOKEN) == ["cpu"]
