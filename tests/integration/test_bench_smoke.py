"""The benchmark harness runs end to end: `python -m bench`, a short `post` run on the file storage,
prints its table.

Needs wrk (skipped without it; CI does not install it). The figures are not checked: a 2-second run on a
shared machine says nothing; the harness's own checks (no lost sample, no non-2xx) decide the exit status.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk: apt-get install wrk"),
]

# The checkout's root, which holds the bench package: `python -m bench` runs from here.
ROOT = Path(__file__).resolve().parents[2]


def test_quick_post_run_on_file_storage_prints_a_table(tmp_path: Path) -> None:
    results = tmp_path / "results.md"
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--modes",
            "file",
            "--only",
            "post",
            "--seconds",
            "2",
            "--results",
            str(results),
            "--max-minutes",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "`python -m bench --quick --modes file --only post" in finished.stdout  # the command it ran
    assert "| post: 1 sample per POST /cpu" in finished.stdout
    assert "| post | file | " in finished.stdout  # the integrity row of the file run
    assert "no acknowledged write lost, every answer 2xx" in finished.stdout
    assert results.read_text().strip() == finished.stdout.strip()
