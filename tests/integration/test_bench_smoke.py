"""The benchmark harness runs end to end: `python -m bench`, short runs on the file storage, print their
table: `post` and `post-metrics` (also against a --baseline tree), `history` and `fleet`. And wrk's
requests of `post-metrics` (bench/workload.lua) carry what the bench's check expects (bench/workload.py).

Needs wrk (skipped without it; CI does not install it). The figures are not checked: a 2-second run on a
shared machine says nothing; the harness's own checks (no lost sample, no non-2xx) decide the exit status.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import workload as w
from bench.processes import run_wrk
from tests.recording_server import recording_server

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


def test_quick_post_metrics_run_on_file_storage_checks_every_metric(tmp_path: Path) -> None:
    finished = _bench(
        tmp_path / "results.md", "--only", "post-metrics", "--seconds", "2", "--max-minutes", "3"
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.splitlines()
    assert any(line.startswith("| post-metrics: 12 metrics per POST /samples, 16 conn.") for line in lines)
    assert any(line.startswith("| post-metrics file ÷ ceiling | ≥ 0.7× | ") for line in lines)
    assert any(line.startswith("| post_metrics | file | ") and line.endswith(" | 0 | ok |") for line in lines)
    assert "| post_metrics | ceiling | " in finished.stdout
    assert "no acknowledged write lost, every answer 2xx" in finished.stdout


def test_quick_post_run_against_a_baseline_tree_runs_both_side_by_side(tmp_path: Path) -> None:
    # The checkout itself stands in for the older tree: the same machinery, its own servers and storage.
    # post-metrics runs on this tree only: an older baseline has no POST /samples.
    finished = _bench(
        tmp_path / "results.md",
        "--only",
        "post,post-metrics",
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
    assert "| post_metrics | file | " in finished.stdout
    assert "post_metrics | baseline-file" not in finished.stdout
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


def test_quick_fleet_run_on_file_storage_reads_back_every_sample(tmp_path: Path) -> None:
    # 50 agents for 3 s: the generator's output is read, and each acknowledged sample found stored whole.
    finished = _bench(
        tmp_path / "results.md",
        "--only",
        "fleet",
        "--fleet-connections",
        "50",
        "--fleet-seconds",
        "3",
        "--max-minutes",
        "3",
    )

    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.splitlines()
    assert "| agents (keep-alive connections) | 50.0 | — |" in lines
    assert "| requests sent | 150 | — |" in lines
    assert "| samples lost | 0 | — |" in lines
    assert any(line.startswith("| fleet file: p99 ÷ idle p50 | < 10.0× | ") for line in lines)
    assert "| fleet_idle | file | 200 | 200 | 200 | 0 | 0 | 0 | 0 | 0 | ok |" in lines
    # Every request answered and stored: nothing in flight at the end, as the generator waits for answers.
    assert "| fleet | file | 150 | 150 | 150 | 0 | 0 | 0 | 0 | 0 | ok |" in lines
    assert "no acknowledged write lost, every answer 2xx" in finished.stdout


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, int, bytes]]]]:
    """A recording server on a free port of 127.0.0.1: its URL and the requests it has had."""
    with recording_server() as server:
        yield server


def test_wrk_post_metrics_requests_carry_the_metrics_the_check_expects(
    tmp_path: Path, recorder: tuple[str, list[tuple[str, int, bytes]]]
) -> None:
    url, requests = recorder
    tokens = [str(uuid.uuid4()) for _ in range(5)]
    base = w.run_time_base(1)
    config = {"kind": "post_metrics", "tokens": tokens, "base_time": base}

    result = run_wrk(url, config, connections=4, seconds=1, work_dir=tmp_path, name="recorded")

    assert result.ok > 0 and result.not_ok == 0
    assert len(result.acked) == result.ok  # every {"stored": 1} counted as an acknowledgement
    threads = len(result.sent_by_thread)
    seen = set()
    for path, _, body in requests:
        sample = json.loads(body)
        thread, request = divmod(sample["time"] - 0.25 - base, w.THREAD_TIME_SPAN)
        thread, request = int(thread), int(request)
        assert path == "/samples"
        assert sample["hash"] == tokens[(thread + request * threads) % len(tokens)]
        assert sample["metrics"] == w.agent_metrics(request)
        assert list(sample["metrics"]) == list(w.POST_METRICS)
        assert request < result.sent_by_thread[thread]
        seen.add((thread, request))
    assert len(seen) == len(requests) >= result.ok
