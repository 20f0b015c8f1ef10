"""`perfmon serve --workers` / PERFMON_WORKERS: read like every setting, and refused outside 1..64."""

from __future__ import annotations

import pytest

from perfmon.config import MAX_WORKERS, ConfigurationError, Settings, load_settings


def test_one_worker_is_the_default() -> None:
    assert load_settings({}, environ={}).workers == 1


def test_perfmon_workers_is_read_and_the_flag_wins_over_it() -> None:
    assert load_settings({}, environ={"PERFMON_WORKERS": "3"}).workers == 3
    assert load_settings({"workers": 2}, environ={"PERFMON_WORKERS": "3"}).workers == 2


@pytest.mark.parametrize("workers", [1, MAX_WORKERS])
def test_workers_from_one_to_the_most_are_accepted(workers: int) -> None:
    assert Settings(workers=workers).workers == workers


@pytest.mark.parametrize("workers", [0, -1, MAX_WORKERS + 1])
def test_a_number_of_workers_out_of_range_is_refused_with_the_range(workers: int) -> None:
    with pytest.raises(ConfigurationError, match=rf"^workers must be 1\.\.64 processes, not {workers}$"):
        Settings(workers=workers)


@pytest.mark.parametrize("text", ["two", "1.5", ""])
def test_perfmon_workers_that_is_not_a_whole_number_is_refused_by_name(text: str) -> None:
    with pytest.raises(ConfigurationError, match="^workers must be a whole number"):
        load_settings({}, environ={"PERFMON_WORKERS": text})
