"""A batch is stored whole or not at all, even when the process dies in the middle of writing it.

A long write() can be cut short by a `kill -9`: the kernel stops between pages, leaving the batch's
first lines, each of them whole, in the file. These tests make that happen on purpose: a child process
appends a batch through the real file storage, but its write stops halfway (as the kernel's would at the
signal) and the child is then killed. Readers and the next append must see none of that batch.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perfmon.adapters.filesystem import FileStorage
from perfmon.domain.model import EVERYTHING, CpuSample, Session, Username

pytestmark = pytest.mark.slow

TOKEN = "7c0a3d4e-2b1f-4a6c-9d8e-0f1a2b3c4d5e"
BATCH = 10_000

# The child appends a batch of BATCH samples; any write larger than a page stops after its first half,
# says so on stdout and waits to be killed: what the kernel leaves when SIGKILL arrives mid-write.
_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from perfmon.adapters.filesystem import FileStorage
    from perfmon.domain.model import CpuSample

    real_write = os.write
    def write_cut_short(fd, data):
        if len(data) <= 4096:
            return real_write(fd, data)
        real_write(fd, data[: len(data) // 2])
        print("half written", flush=True)
        time.sleep(60)
    os.write = write_cut_short

    storage = FileStorage(Path(sys.argv[1]), fsync=sys.argv[3] == "always")
    storage.samples.append(sys.argv[2], [CpuSample(50.0, 2e9 + i) for i in range({batch})])
    """
).format(batch=BATCH)


def _storage_with_one_sample(data_dir: Path, fsync: bool) -> FileStorage:
    storage = FileStorage(data_dir, fsync=fsync)
    storage.sessions.add(Session(TOKEN, Username("crash"), created_at=1.0))
    storage.samples.append(TOKEN, [CpuSample(1.0, 1e9)])
    return storage


def _kill_mid_batch(data_dir: Path, fsync: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data_dir), TOKEN, fsync], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "half written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)


@pytest.mark.parametrize("fsync", ["never", "always"])
def test_a_batch_cut_short_by_kill_9_is_not_seen_by_readers(tmp_path: Path, fsync: str) -> None:
    data_dir = tmp_path / "data"
    _storage_with_one_sample(data_dir, fsync == "always")

    _kill_mid_batch(data_dir, fsync)

    # The half-written batch's lines are in the file, whole: a reader must still not count them.
    assert (data_dir / "sessions" / f"{TOKEN}.csv").read_bytes().count(b"\n") > 1 + BATCH // 4
    after = FileStorage(data_dir, fsync=fsync == "always")
    assert list(after.samples.between(TOKEN, EVERYTHING)) == [CpuSample(1.0, 1e9)]
    assert after.samples.summaries([TOKEN])[TOKEN].count == 1


def test_the_next_append_removes_a_batch_cut_short_and_lands_whole(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _storage_with_one_sample(data_dir, fsync=False)
    _kill_mid_batch(data_dir, "never")

    after = FileStorage(data_dir, fsync=False)
    after.samples.append(TOKEN, [CpuSample(2.0, 1e9 + 1), CpuSample(3.0, 1e9 + 2)])

    expected = [CpuSample(1.0, 1e9), CpuSample(2.0, 1e9 + 1), CpuSample(3.0, 1e9 + 2)]
    assert list(after.samples.between(TOKEN, EVERYTHING)) == expected
    # The file itself is clean again: a person opening the CSV sees exactly the stored samples.
    csv = b"cpu,time\n1.0,1000000000.0\n2.0,1000000001.0\n3.0,1000000002.0\n"
    assert (data_dir / "sessions" / f"{TOKEN}.csv").read_bytes() == csv
    assert not (data_dir / "sessions" / f"{TOKEN}.pending").exists()
