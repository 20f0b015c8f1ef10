"""The benchmark harness runs end to end: `python -m bench`, short runs on the file storage, print their
table: `post` (also against a --baseline tree) and `history`.

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


def _bench(results: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--modes", "file", "--results", str(results), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


def test_quick_post_run_on_file_storage_prints_a_table(tmp_path: Path) -> None:
    results = tmp_path / "results.md"
    finished = _bench(results, "--only", "post", "--seconds", "2", "--max-minutes", "3")

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "`python -m bench --quick --modes file --results " in finished.stdout  # the command it ran
    assert "| post: 1 sample per POST /cpu" in finished.stdout
    assert "| post | file | " in finished.stdout  # the integrity row of the file run
    assert "no acknowledged write lost, every answer 2xx" in finished.stdout
    assert results.read_text().strip() == finished.stdout.strip()


def test_quick_post_run_against_a_baseline_tree_runs_both_side_by_side(tmp_path: Path) -> None:
    # The checkout itself stands in for the older tree: the same machinery, its own servers and storage.
    finished = _bench(
        tmp_path / "results.md",
        "--only",
        "post",
        "--seconds",
        "2",
        "--baseline",
        str(ROOT),
        "--max-minutes",
        "3",
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "## Against the baseline" in finished.stdout
    assert "| post | baseline-file | " in finished.stdout  # its writes checked through its own adapters
    assert "| post file ÷ baseline | ≥ 0.9× | " in finished.stdout
    assert "no acknowledged write lost, every answer 2xx" in finished.stdout


def test_quick_history_run_on_file_storage_prints_its_table(tmp_path: Path) -> None:
    finished = _bench(tmp_path / "results.md", "--only", "history", "--seconds", "3", "--max-minutes", "5")

    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.splitlines()
    assert "| samples in the long session | 86,400 | — |" in lines  # --quick: a day
    assert "| the dashboard's step for the whole history, s | 120 | — |" in lines
    assert any(line.startswith("| p50 ratio long ÷ 10-minute | ") for line in lines)
    assert any(line.startswith("| history RSS growth file, 8 readers | ≤ 100 MB | ") for line in lines)
    assert any(
        line.startswith("| history bytes per sample file, closed days, raw + rollups | ≤ 8 B | ")
        for line in lines
    )
    assert "| history_post_busy | file | " in finished.stdout  # the posts' integrity row
    assert "no acknowledged write lost, every answer 2xx" in finished.stdout
