"""The benchmark's `post --workers 2` variant (issue 14): each mode's server of two processes is held
against the ceiling's one process and beside the mode's own one process, and its CPU time is that of
all its processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.processes import tree_cpu_seconds
from bench.report import Measurement
from tests.unit.test_bench_report import _post_runs, _render, _run


def _workers_runs() -> list[Measurement]:
    """Two repetitions of post: the ceiling 1,000 and 1,200, file 500 and 700 (from _post_runs), and
    file with --workers 2 at 1,500 and 1,680."""
    return [
        *_post_runs(),
        _run("post", "file-w2", 0, 1500.0, p50=3.0, cpu_s=3.0),
        _run("post", "file-w2", 1, 1680.0, p50=3.0, cpu_s=3.0),
    ]


def test_post_with_two_workers_is_held_against_the_one_process_ceiling() -> None:
    table, healthy = _render(_workers_runs(), ["file"])

    assert healthy
    lines = table.splitlines()
    # 1,500 ÷ 1,000 and 1,680 ÷ 1,200: 1.5 and 1.4, their median 1.45.
    assert "| post --workers 2 | 200s per s | 1,100 ±9% | 1,590 ±6% | 1.45× | — | — |" in lines
    assert (
        "| post --workers 2 | server CPU ms per 200 (all its processes) | 1 ±0% | 3 ±0% | 3.00× | — | — |"
        in lines
    )
    # Beside the mode's one process, run by run: 1,500 ÷ 500 and 1,680 ÷ 700, 3.0 and 2.4.
    assert "| post --workers 2 ÷ post (one process) | 200s per s | | 2.70× | | — | |" in lines
    assert "| post --workers 2 file ÷ ceiling (one process) | ≥ 1.4× | 1.45× | PASS |" in lines
    assert "post --workers 2 db" not in table  # db was not measured
    assert "| post | file-w2 | 2000 | 2000 | 2004 | 0 | 4 | 0 | 0 | 0 | ok |" in lines


def test_without_a_workers_run_there_is_no_workers_row() -> None:
    table, _ = _render(_post_runs(), ["file"])

    assert "--workers" not in table


def _own_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_cpu_time_of_a_server_counts_its_worker_processes() -> None:
    # A parent that does nothing but wait for a child that burns 0.4 s of CPU, then sleeps.
    burn = (
        "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"]
    )
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_seconds(parent.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.1)
        total, own = tree_cpu_seconds(parent.pid), _own_cpu_seconds(parent.pid)
    finally:
        # The child by its PID (it would end by itself after its 30 s sleep).
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split():
                os.kill(int(child), signal.SIGKILL)
        parent.kill()
        parent.wait(timeout=10)

    assert total >= 0.4
    assert own < 0.3  # the parent's own share: the rest is its child's
