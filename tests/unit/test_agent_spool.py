"""The agent's spool: bounded, oldest first, on disk across restarts, and crash-safe about what was sent.

A crash is simulated by copying the spool folder while the spool is open: the copy holds exactly what
the files held at that instant, which is all a crashed agent leaves behind."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmon.agent.adapters.spool import Spool
from perfmon.agent.adapters.spool_files import QUARANTINE_FILE, SpoolLocked, decode, encode, segment_path
from perfmon.agent.command import claim_spool_dir
from perfmon.agent.model import Sample
from perfmon.agent.sender import Sender
from perfmon.agent.status import StatusReport
from tests.agent_fakes import FakeServer


def _sample(n: int) -> Sample:
    return Sample({"cpu": float(n)}, taken_at=1_700_000_000.0 + n / 10)


def _cpus(spool: Spool, max_count: int = 100) -> list[float]:
    return [sample.metrics["cpu"] for sample in spool.peek(max_count).samples]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", limit=5) as opened:
        yield opened


def _crash_copy(spool: Spool, tmp_path: Path) -> Path:
    """The folder as a crash of the agent at this instant would leave it."""
    return Path(shutil.copytree(spool.folder, tmp_path / "after-crash"))


def test_samples_come_back_oldest_first_and_leave_only_when_committed(spool: Spool) -> None:
    for n in range(3):
        spool.append(_sample(n))

    batch = spool.peek(2)
    assert [s.metrics["cpu"] for s in batch.samples] == [0.0, 1.0]
    assert _cpus(spool) == [0.0, 1.0, 2.0]  # peeking removes nothing

    spool.commit(batch)
    assert _cpus(spool) == [2.0]
    assert spool.counts().pending == 1


def test_values_round_trip_exactly(spool: Spool) -> None:
    sample = Sample({"cpu": 0.1 + 0.2, "net_rx": 1e300, "temp": -5e-324}, taken_at=1_700_000_000.123456789)
    spool.append(sample)
    assert spool.peek(1).samples == (sample,)


@settings(max_examples=50, deadline=None)
@given(
    metrics=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True),
        st.floats(allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=64,
    ),
    taken_at=st.floats(min_value=0, max_value=1e11, exclude_max=True),
)
def test_any_sample_of_the_protocol_round_trips_through_a_spool_line(
    metrics: dict[str, float], taken_at: float
) -> None:
    sample = Sample(metrics, taken_at)

    assert decode(encode(sample)) == sample


def test_a_full_spool_drops_the_oldest_and_counts_the_drops(spool: Spool) -> None:
    for n in range(8):
        spool.append(_sample(n))

    assert _cpus(spool) == [3.0, 4.0, 5.0, 6.0, 7.0]
    counts = spool.counts()
    assert (counts.pending, counts.dropped) == (5, 3)


def test_spooled_samples_survive_a_restart(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool", limit=5) as first:
        for n in range(4):
            first.append(_sample(n))
        first.commit(first.peek(1))

    with Spool(tmp_path / "spool", limit=5) as second:
        assert _cpus(second) == [1.0, 2.0, 3.0]
        second.append(_sample(4))
        assert _cpus(second) == [1.0, 2.0, 3.0, 4.0]


def test_what_was_committed_stays_committed_after_a_crash(spool: Spool, tmp_path: Path) -> None:
    for n in range(4):
        spool.append(_sample(n))
    spool.commit(spool.peek(2))

    with Spool(_crash_copy(spool, tmp_path), limit=5) as recovered:
        assert _cpus(recovered) == [2.0, 3.0]


def test_a_crash_after_appending_loses_no_sample(spool: Spool, tmp_path: Path) -> None:
    for n in range(3):
        spool.append(_sample(n))

    with Spool(_crash_copy(spool, tmp_path), limit=5) as recovered:
        assert _cpus(recovered) == [0.0, 1.0, 2.0]


def test_a_half_written_last_line_is_cut_when_reopened(spool: Spool, tmp_path: Path) -> None:
    spool.append(_sample(0))
    copy = _crash_copy(spool, tmp_path)
    with open(segment_path(copy, 0), "ab") as segment:
        segment.write(b"12.5,17000")  # the crash came in the middle of a write

    with Spool(copy, limit=5) as recovered:
        recovered.append(_sample(1))
        assert _cpus(recovered) == [0.0, 1.0]


def test_reopening_with_a_lower_limit_drops_the_oldest(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool", limit=5) as first:
        for n in range(5):
            first.append(_sample(n))

    with Spool(tmp_path / "spool", limit=2) as second:
        assert _cpus(second) == [3.0, 4.0]
        assert second.counts().dropped == 3


def test_compaction_keeps_the_pending_samples_in_order(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool", limit=100, compact_min_bytes=0) as spool:
        for n in range(10):
            spool.append(_sample(n))
        spool.commit(spool.peek(8))
        spool.compact()
        spool.append(_sample(10))

        assert _cpus(spool) == [8.0, 9.0, 10.0]
        assert not segment_path(spool.folder, 0).exists()
    with Spool(tmp_path / "spool", limit=100) as reopened:
        assert _cpus(reopened) == [8.0, 9.0, 10.0]


def test_a_segment_left_by_an_interrupted_compaction_is_ignored(spool: Spool, tmp_path: Path) -> None:
    for n in range(3):
        spool.append(_sample(n))
    copy = _crash_copy(spool, tmp_path)
    segment_path(copy, 1).write_bytes(b"9.0,1.0\n")  # written, but the state never switched to it

    with Spool(copy, limit=5) as recovered:
        assert _cpus(recovered) == [0.0, 1.0, 2.0]
        assert not segment_path(copy, 1).exists()


def test_a_commit_of_samples_dropped_meanwhile_does_not_count_them_as_dropped(spool: Spool) -> None:
    for n in range(5):
        spool.append(_sample(n))
    on_its_way = spool.peek(5)
    spool.append(_sample(5))  # full: drops sample 0, which is in the batch being sent

    spool.commit(on_its_way)

    assert _cpus(spool) == [5.0]
    assert spool.counts().dropped == 0


def test_quarantined_samples_are_set_aside_in_a_file(spool: Spool) -> None:
    for n in range(3):
        spool.append(_sample(n))

    spool.quarantine(spool.peek(3), 1)

    assert _cpus(spool) == [1.0, 2.0]
    assert spool.counts().quarantined == 1
    assert (spool.folder / QUARANTINE_FILE).read_text() == "1700000000.0,cpu=0.0\n"


def test_a_damaged_line_is_quarantined_not_sent(spool: Spool, tmp_path: Path) -> None:
    spool.append(_sample(0))
    copy = _crash_copy(spool, tmp_path)
    with open(segment_path(copy, 0), "ab") as segment:
        segment.write(b"not a sample\n")

    with Spool(copy, limit=5) as recovered:
        recovered.append(_sample(2))
        recovered.commit(recovered.peek(1))
        assert _cpus(recovered) == [2.0]
        assert recovered.counts().quarantined == 1


def test_a_second_spool_on_the_same_folder_is_refused(spool: Spool) -> None:
    with pytest.raises(SpoolLocked, match="another perfmon agent"):
        Spool(spool.folder, limit=5)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common umask (022), under which a file created without an explicit mode is 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _modes(folder: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in [folder, *folder.iterdir()]}


@pytest.mark.usefixtures("usual_umask")
def test_every_spool_file_is_readable_by_its_user_only(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    claim_spool_dir(folder, "http://127.0.0.1:8080", "alice", "web-1")
    with Spool(folder, limit=100, compact_min_bytes=0) as spool:
        for n in range(4):
            spool.append(_sample(n))
        spool.quarantine(spool.peek(1), 1)
        spool.commit(spool.peek(2))
        spool.compact()  # a new segment
        modes = _modes(folder)

    assert {"target.json", "lock", "state.json", QUARANTINE_FILE, "segment-00000001.csv"} <= set(modes)
    assert modes == {name: 0o700 if name == "spool" else 0o600 for name in modes}


@pytest.mark.usefixtures("usual_umask")
def test_a_spool_folder_left_readable_by_others_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    folder.mkdir(mode=0o755)
    (folder / "target.json").write_text('{"server": "http://127.0.0.1:8080", "user": "alice"}')
    segment_path(folder, 0).write_text("1.0,1700000000.0\n")
    for loose in [folder, *folder.iterdir()]:
        loose.chmod(0o777 if loose.is_dir() else 0o644)  # as an older agent or a hand-made folder left them

    claim_spool_dir(folder, "http://127.0.0.1:8080", "alice", "web-1")
    with Spool(folder, limit=5) as spool:
        assert _cpus(spool) == [1.0]
        modes = _modes(folder)

    assert modes == {name: 0o700 if name == "spool" else 0o600 for name in modes}


# A spool folder as the release before hosts and metrics left it, byte for byte: `cpu,time` lines (its
# encode(): repr of each float), the first line acknowledged (head 18, the state file's json.dumps), and
# its claim without a host.
OLD_SEGMENT = b"12.5,1700000000.0\n0.30000000000000004,1700000000.123456\n100.0,1700000001.5\n"
OLD_STATE = b'{"segment": 0, "head": 18}'
OLD_TARGET = b'{"server": "http://127.0.0.1:8080", "user": "alice"}'


def _old_spool(folder: Path) -> Path:
    folder.mkdir(mode=0o700)
    segment_path(folder, 0).write_bytes(OLD_SEGMENT)
    (folder / "state.json").write_bytes(OLD_STATE)
    (folder / "target.json").write_bytes(OLD_TARGET)
    return folder


def test_a_spool_of_the_previous_release_reads_as_cpu_samples_after_its_acknowledged_head(
    tmp_path: Path,
) -> None:
    folder = _old_spool(tmp_path / "spool")
    claim_spool_dir(folder, "http://127.0.0.1:8080", "alice", "web-1")

    with Spool(folder, limit=100) as spool:
        spool.append(Sample({"cpu": 7.0, "mem": 40.0}, 1_700_000_002.0))
        assert spool.peek(10).samples == (
            Sample({"cpu": 0.1 + 0.2}, 1_700_000_000.123456),
            Sample({"cpu": 100.0}, 1_700_000_001.5),
            Sample({"cpu": 7.0, "mem": 40.0}, 1_700_000_002.0),
        )
        assert spool.counts().pending == 3


def test_a_spool_of_the_previous_release_drains_to_the_host_as_cpu_samples(tmp_path: Path) -> None:
    server = FakeServer(host="web-1")
    server.create_user()
    folder = _old_spool(tmp_path / "spool")
    claim_spool_dir(folder, "http://127.0.0.1:8080", "alice", "web-1")

    with Spool(folder, limit=100) as spool:
        sender = Sender(server, spool, StatusReport())
        while sender.send_one_batch():
            pass
        assert spool.counts().pending == 0

    assert [s.metrics for s in server.host_history()] == [{"cpu": 0.1 + 0.2}, {"cpu": 100.0}]


def test_the_claim_of_the_previous_release_is_taken_over_for_the_host_and_another_host_is_refused(
    tmp_path: Path,
) -> None:
    folder = _old_spool(tmp_path / "spool")

    claim_spool_dir(folder, "http://127.0.0.1:8080", "alice", "web-1")
    claim_spool_dir(folder, "http://127.0.0.1:8080", "alice", "web-1")  # ours now: accepted again
    with pytest.raises(ValueError, match="another server, user or host"):
        claim_spool_dir(folder, "http://127.0.0.1:8080", "alice", "web-2")


@pytest.mark.parametrize(
    "line",
    [b"1700000000.0\n", b"1700000000.0,cpu=1.0,cpu=2.0\n", b"1700000000.0,CPU=1.0\n", b"1.0,cpu=nan\n"]
    + [b"1700000000.0,cpu=1=2\n", b"inf,cpu=1.0\n", b"1.0,2.0,3.0\n", b"\xff,cpu=1\n"],
)
def test_a_line_that_is_no_sample_in_either_format_reads_as_damaged(line: bytes) -> None:
    assert decode(line) is None
