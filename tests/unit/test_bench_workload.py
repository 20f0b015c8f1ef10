"""The benchmark's history workload (bench/workload.py): the samples it loads and the step it reads at."""

from __future__ import annotations

import math

import pytest

from bench import workload as w

END = 1_764_460_800.0  # a UTC midnight


def test_the_dashboard_step_rounds_a_bucket_per_pixel_up_as_the_dashboard_does() -> None:
    # The cases of tests/unit/dashboard/ranges.test.mjs, for static/ranges.js's stepFor.
    assert w.dashboard_step(3600, 1000) == 5
    assert w.dashboard_step(86400, 1166) == 120
    assert w.dashboard_step(30 * 86400, 1000) == 3600
    assert w.dashboard_step(365 * 86400, 1000) == 43200
    assert w.dashboard_step(365 * 86400, 300) == 2 * 86400
    assert w.dashboard_step(300, 300) == 1


@pytest.mark.parametrize("days", [0.01, 1, 7, 30, 365, 3650])
def test_the_dashboard_step_is_a_multiple_of_every_rollup_width_it_reaches(days: float) -> None:
    step = w.dashboard_step(days * 86400)
    assert step >= days * 86400 / w.PLOT_WIDTH
    assert all(step % width == 0 for width in (60, 3600, 86400) if step >= width)


def test_agent_history_is_a_sample_a_second_in_batches_oldest_first_ending_now() -> None:
    batches = list(w.agent_history(END, 25_000))

    assert [len(batch) for batch in batches] == [5_000, 10_000, 10_000]
    samples = [sample for batch in batches for sample in batch]
    times = [moment for _, moment in samples]
    assert times == sorted(times)
    assert END - 24_999 < times[0] < END - 24_998
    assert END < times[-1] < END + 0.01
    assert all(0.99 < later - earlier < 1.01 for earlier, later in zip(times, times[1:], strict=False))
    assert all(0 <= cpu <= 100 and round(cpu, 1) == cpu for cpu, _ in samples)
    assert len({moment % 1 for moment in times}) > 10_000  # time.time()-like: not rounded to ms


def test_a_short_history_is_the_tail_of_a_long_one() -> None:
    long = [sample for batch in w.agent_history(END, 30_001) for sample in batch]
    short = [sample for batch in w.agent_history(END, 601) for sample in batch]

    assert long[-601:] == short
    assert sum(1 for _, moment in long if moment >= END - 600) == 601
    assert math.floor(short[0][1]) == END - 600
