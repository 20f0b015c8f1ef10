"""Rollups: exact totals kept per bucket, and step reads from them that equal the raw answer bit for bit."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from perfmon.domain.downsampling import downsample, units
from perfmon.domain.model import EVERYTHING, MAX_TIMESTAMP, Bucket, SampleSeries, TimeRange
from perfmon.domain.rollups import (
    ROLLUP_WIDTHS,
    RollupBucket,
    exact_sum_text,
    merge_partials,
    overlapping,
    parse_exact_sum,
    rollup,
    rollups_of,
    stepped_buckets,
    widths_dividing,
)


class _Series:
    """A series held in memory: raw samples and their rollups, as a storage answers for them."""

    def __init__(self, series: SampleSeries) -> None:
        self.series = series
        self.raw_reads: list[TimeRange] = []
        self.rollup_rows = 0

    def between(self, time_range: TimeRange) -> SampleSeries:
        self.raw_reads.append(time_range)
        return self.series.within(time_range)

    def rollups(self, width: float, time_range: TimeRange) -> list[RollupBucket]:
        found = overlapping(rollup(self.series, width), time_range)
        self.rollup_rows += len(found)
        return found


def _bits(buckets: list[Bucket]) -> list[tuple[object, ...]]:
    """Buckets with every float as its bit pattern: -0.0 and 0.0 differ, as they must."""
    return [tuple(struct.pack("<d", f) if isinstance(f, float) else f for f in bucket) for bucket in buckets]


times = st.floats(min_value=0, max_value=MAX_TIMESTAMP, exclude_max=True)
values = st.floats(allow_nan=False, allow_infinity=False)
steps = st.sampled_from([60.0, 120.0, 180.0, 3600.0, 7200.0, 86400.0, 172800.0, 90.0, 1.0])


def _near_boundaries() -> st.SearchStrategy[float]:
    """Times at or just around multiples of a minute, where float rounding puts samples in one bucket or
    the next: where a rollup read could go wrong."""
    return st.builds(
        lambda k, width, ulps: (
            max(0.0, math.nextafter(k * width, math.inf if ulps > 0 else 0.0)) if ulps else k * width
        ),
        st.integers(0, 1_000_000_000 // 60),
        st.sampled_from(ROLLUP_WIDTHS),
        st.integers(-1, 1),
    )


@settings(max_examples=300, deadline=None)
@given(
    samples=st.lists(st.tuples(values, st.one_of(times, _near_boundaries())), max_size=60),
    step=steps,
    bounds=st.tuples(st.none() | times, st.none() | times),
)
@example(samples=[(1.0, 59.99999999999999), (2.0, 60.0)], step=120.0, bounds=(None, None))
@example(samples=[(-0.0, 10.0), (0.0, 20.0)], step=60.0, bounds=(None, None))
@example(samples=[(1e308, 3600.0), (1e308, 3601.0)], step=3600.0, bounds=(None, None))
def test_step_reads_from_rollups_equal_the_raw_answer(
    samples: list[tuple[float, float]], step: float, bounds: tuple[float | None, float | None]
) -> None:
    start, end = bounds
    if start is not None and end is not None and start > end:
        start, end = end, start
    time_range = TimeRange(start, end)
    series = SampleSeries([value for value, _ in samples], [moment for _, moment in samples])
    expected = downsample(series.within(time_range), step)
    assert _bits(stepped_buckets(_Series(series), time_range, step)) == _bits(expected)


def test_a_long_range_reads_about_one_rollup_row_per_bucket_and_a_few_raw_samples() -> None:
    # 30 days at 1 Hz, read at an hour per bucket from mid-minute to mid-minute.
    moments = [1_700_000_000.5 + second for second in range(30 * 86400)]
    source = _Series(SampleSeries([float(i % 100) for i in range(len(moments))], moments))
    time_range = TimeRange(moments[0] + 1234.5, moments[-1] - 4321.25)
    buckets = stepped_buckets(source, time_range, 3600.0)
    assert _bits(buckets) == _bits(downsample(source.series.within(time_range), 3600.0))
    raw_samples = sum(len(source.series.within(read)) for read in source.raw_reads)
    # ~720 hour rows, plus the minutes and seconds at the two cut edges.
    assert source.rollup_rows < 720 + 2 * 60 + 10
    assert raw_samples < 2 * 60


def test_a_step_no_width_divides_is_read_raw() -> None:
    source = _Series(SampleSeries([1.0, 2.0], [10.0, 100.0]))
    assert stepped_buckets(source, EVERYTHING, 90.0) == downsample(source.series, 90.0)
    assert source.rollup_rows == 0


@pytest.mark.parametrize(
    ("step", "widths"),
    [
        (60.0, [60.0]),
        (120.0, [60.0]),
        (3600.0, [3600.0, 60.0]),
        (86400.0 * 7, [86400.0, 3600.0, 60.0]),
        (2592.0, []),
        (30.0, []),
        (90.0, []),
    ],
)
def test_the_widths_a_step_can_use_divide_it_exactly(step: float, widths: list[float]) -> None:
    assert widths_dividing(step) == widths


@given(st.lists(values, min_size=1, max_size=40))
def test_exact_sums_round_trip_through_their_text(samples: list[float]) -> None:
    total = sum(map(units, samples))
    assert parse_exact_sum(exact_sum_text(total)) == total


def test_an_exact_sum_of_real_data_is_short() -> None:
    total = sum(units(value / 10) for value in range(120, 180))
    assert len(exact_sum_text(total)) < 30


@pytest.mark.parametrize("text", ["", "12", "0x1p-1075", "0X1p0", "0x1.8p0", "0x1p", "--0x1p0"])
def test_anything_else_is_no_exact_sum(text: str) -> None:
    with pytest.raises(ValueError):
        parse_exact_sum(text)


def test_partial_rows_of_a_bucket_merge_into_the_rollup_of_all_their_samples() -> None:
    series = SampleSeries([5.0, -0.0, 7.5, 0.0], [61.0, 62.0, 119.0, 150.0])
    partials = rollup(series[:2], 60.0) + rollup(series[2:], 60.0)
    assert merge_partials(reversed(partials)) == rollup(series, 60.0)


@settings(max_examples=500, deadline=None)
@given(
    samples=st.lists(st.tuples(values, st.one_of(times, _near_boundaries())), max_size=80),
    in_time_order=st.booleans(),
)
@example(samples=[(1.0, 3599.99999), (2.0, 3600.0), (3.0, 3600.00001)], in_time_order=True)
@example(samples=[(1.0, 1e11 - 60.00001), (2.0, 1e11 - 59.99999)], in_time_order=True)
def test_rollups_at_every_width_at_once_are_the_rollup_at_each(
    samples: list[tuple[float, float]], in_time_order: bool
) -> None:
    if in_time_order:
        samples = sorted(samples, key=lambda sample: sample[1])
    series = SampleSeries([value for value, _ in samples], [moment for _, moment in samples])
    found = rollups_of(series)
    for width in ROLLUP_WIDTHS:
        assert [tuple(map(repr, bucket)) for bucket in found[width]] == [
            tuple(map(repr, bucket)) for bucket in rollup(series, width)
        ]
