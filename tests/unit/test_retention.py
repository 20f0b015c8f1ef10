"""Retention: the settings that say how long history is kept, the policy, and the server's loop."""

from __future__ import annotations

import logging

import pytest

from perfmon.adapters.memory import InMemorySampleRepository, InMemorySessionRepository
from perfmon.config import ConfigurationError, Settings, load_settings, parse_duration
from perfmon.domain.errors import StorageUnavailable
from perfmon.domain.model import EVERYTHING, Sample, Session, Username
from perfmon.domain.ports import PruneReport
from perfmon.domain.retention import Retention, RetentionPolicy
from perfmon.entrypoints.background import MaintenanceLoop, describe_prune

DAY = 86400.0
TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90d", 90 * DAY),
        ("12h", 43200.0),
        ("30m", 1800.0),
        ("2w", 14 * DAY),
        ("3600s", 3600.0),
        ("1.5d", 1.5 * DAY),
        (" 7D ", 7 * DAY),
        ("forever", None),
        ("", None),
    ],
)
def test_a_retention_is_a_number_and_a_unit_or_forever(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["90", "d", "-1d", "0d", "1y", "90 days", "1e400d", "nan"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_retention_comes_from_the_environment_and_flags_win() -> None:
    environ = {"PERFMON_RETENTION": "30d", "PERFMON_ROLLUP_RETENTION": "400d"}
    assert load_settings({}, environ).retention_seconds() == (30 * DAY, 400 * DAY)
    assert load_settings({"retention": "7d"}, environ).retention_seconds() == (7 * DAY, 400 * DAY)
    assert load_settings({}, {}).retention_seconds() == (None, None)


@pytest.mark.parametrize(
    ("retention", "rollups", "words"),
    [
        ("30d", "7d", "rollup retention must be at least"),
        ("forever", "30d", "rollup retention must be at least"),
        ("30 days", "forever", "^retention: not a duration"),
        ("30d", "bogus", "^rollup retention: not a duration"),
    ],
)
def test_settings_refuse_a_retention_that_cannot_work(retention: str, rollups: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        Settings(retention=retention, rollup_retention=rollups)


def test_the_policy_keeps_rollups_at_least_as_long_as_raw_samples() -> None:
    assert RetentionPolicy().keeps_everything
    assert RetentionPolicy(raw=DAY).cutoffs(10 * DAY) == (9 * DAY, None)
    assert RetentionPolicy(raw=DAY, rollups=2 * DAY).cutoffs(10 * DAY) == (9 * DAY, 8 * DAY)
    for raw, rollups in [(2 * DAY, DAY), (None, DAY), (0.0, None), (-1.0, None)]:
        with pytest.raises(ValueError):
            RetentionPolicy(raw=raw, rollups=rollups)


def _storage_with_ten_days() -> InMemorySampleRepository:
    sessions = InMemorySessionRepository()
    sessions.add(Session(TOKEN, Username("alice"), 0.0))
    samples = InMemorySampleRepository(sessions)
    samples.append(TOKEN, [Sample(day * DAY + 10.0, {"cpu": float(day)}) for day in range(10)])
    return samples


def test_a_dry_run_says_what_would_go_and_drops_nothing() -> None:
    samples = _storage_with_ten_days()
    retention = Retention(RetentionPolicy(raw=3 * DAY), samples, clock=lambda: 10 * DAY)
    report = retention.prune(apply=False)
    assert report == PruneReport(applied=False, raw_units=7)
    assert len(samples.between(TOKEN, "cpu", EVERYTHING)) == 10
    assert describe_prune(report).startswith("would drop 7 unit(s) of raw samples")


def test_the_maintenance_loop_prunes_by_the_policy_and_logs_what_it_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = _storage_with_ten_days()
    retention = Retention(RetentionPolicy(raw=3 * DAY), samples, clock=lambda: 10 * DAY)
    with caplog.at_level(logging.INFO, logger="perfmon.maintenance"):
        MaintenanceLoop(retention, interval=60).run_once()
    assert samples.between(TOKEN, "cpu", EVERYTHING).taken_at == [7 * DAY + 10, 8 * DAY + 10, 9 * DAY + 10]
    assert "retention: dropped 7 unit(s) of raw samples" in caplog.text
    assert TOKEN not in caplog.text


class _FailingMaintenance:
    """A storage whose every pass fails as the test says."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def maintain(self, now: float) -> None:
        self.calls += 1
        raise self.error

    def prune(self, raw_before: float | None, rollups_before: float | None, apply: bool) -> PruneReport:
        raise AssertionError("not reached")


@pytest.mark.parametrize(
    ("error", "level"), [(StorageUnavailable("disk gone"), "WARNING"), (RuntimeError("a bug"), "ERROR")]
)
def test_a_failing_pass_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture, error: Exception, level: str
) -> None:
    storage = _FailingMaintenance(error)
    loop = MaintenanceLoop(Retention(RetentionPolicy(), storage, clock=lambda: 0.0), interval=60)
    loop.run_once()
    loop.run_once()
    assert storage.calls == 2
    assert [record.levelname for record in caplog.records] == [level, level]


def test_the_loop_thread_starts_and_stops() -> None:
    samples = _storage_with_ten_days()
    loop = MaintenanceLoop(Retention(RetentionPolicy(raw=3 * DAY), samples, clock=lambda: 10 * DAY), 3600)
    loop.start()
    loop.stop(timeout=10)
    # The first pass runs at once, before the first wait.
    assert len(samples.between(TOKEN, "cpu", EVERYTHING)) == 3


@pytest.mark.parametrize("interval", [0, -1, 86401, 10**20])
def test_a_maintenance_interval_beyond_a_day_or_below_a_second_is_refused(interval: int) -> None:
    with pytest.raises(ConfigurationError, match="maintenance interval must be 1..86400 seconds"):
        Settings(maintenance_interval=interval)
