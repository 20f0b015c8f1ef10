"""Retention as an operator sees it: the server prunes by itself, `perfmon prune` says what it would drop,
and the wire protocol answers the same for everything the retention keeps."""

from __future__ import annotations

import time

import pytest
import requests

from perfmon.domain.rollups import DAY, day_start
from tests.integration.api_calls import open_account, read_cpu
from tests.servers import run_perfmon, start_server_process

HOUR = 3600.0


def _post_five_days(url: str, token: str, now: float) -> list[dict[str, float]]:
    """A sample every hour over the five days before now, in one batch."""
    samples = [{"cpu": float(i % 100), "time": now - 5 * DAY + i * HOUR} for i in range(5 * 24)]
    answer = requests.post(f"{url}/cpu", json={"hash": token, "samples": samples}, timeout=30)
    assert answer.status_code == 200, answer.text
    return samples


def _summary(url: str, token: str) -> dict[str, object]:
    (session,) = requests.get(f"{url}/sessions", params={"hash": token}, timeout=10).json()["payload"]
    return session


def test_the_server_prunes_raw_samples_past_the_retention_and_step_reads_still_answer(
    server_flags: list[str],
) -> None:
    server = start_server_process(*server_flags, "--retention", "2d", "--maintenance-interval", "1")
    try:
        _, token = open_account(server.url)
        now = time.time()
        samples = _post_five_days(server.url, token, now)
        hourly = read_cpu(server.url, token, step=HOUR).json()["payload"]
        summary = _summary(server.url, token)
        kept_from = day_start(now - 2 * DAY)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            raw = read_cpu(server.url, token).json()["payload"]
            if len(raw) < len(samples):
                break
            time.sleep(0.5)
        assert [sample["timestamp"] for sample in raw] == [
            s["time"] for s in samples if s["time"] >= kept_from
        ]
        # What the raw samples gave before pruning, the rollups still give, and the summary is unchanged.
        assert read_cpu(server.url, token, step=HOUR).json()["payload"] == hourly
        assert _summary(server.url, token) == summary
    finally:
        server.stop()
    assert "retention: dropped" in "".join(server.log)
    assert token not in "".join(server.log)


def test_perfmon_prune_is_a_dry_run_unless_applied(server_flags: list[str]) -> None:
    server = start_server_process(*server_flags)
    try:
        _, token = open_account(server.url)
        samples = _post_five_days(server.url, token, time.time())
    finally:
        server.stop()

    dry = run_perfmon("prune", *server_flags, "--retention", "1d")
    assert dry.returncode == 0, dry.stderr
    assert "would drop" in dry.stdout and "--apply" in dry.stdout
    applied = run_perfmon("prune", *server_flags, "--retention", "1d", "--rollup-retention", "1d", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith("dropped")

    server = start_server_process(*server_flags)
    try:
        left = read_cpu(server.url, token).json()["payload"]
        buckets = read_cpu(server.url, token, step=DAY).json()["payload"]
    finally:
        server.stop()
    assert 0 < len(left) < len(samples)
    assert sum(bucket["count"] for bucket in buckets) == len(left)


def test_perfmon_prune_without_a_retention_has_nothing_to_do(server_flags: list[str]) -> None:
    result = run_perfmon("prune", *server_flags)
    assert result.returncode == 0, result.stderr
    assert "nothing to prune" in result.stdout


@pytest.mark.parametrize("flag", ["--retention=90", "--rollup-retention=1d"])
def test_perfmon_prune_refuses_a_retention_that_cannot_work(server_flags: list[str], flag: str) -> None:
    result = run_perfmon("prune", *server_flags, flag)
    assert result.returncode == 2
    assert "retention" in result.stderr
