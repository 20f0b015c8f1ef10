"""Stored rollups: per series, fixed-width buckets of exact totals, and the step read that uses them.

A rollup bucket of width w holds the count, exact sum, least and greatest value of the samples whose
time t has `bucket_start(t, w)` equal to its start, and the times of its first and last sample. Totals
merge (perfmon.domain.downsampling.BucketTotals), so a storage may keep a bucket as several partial
rows and add them up when it reads them.

A `step` read (`stepped_buckets`) takes the widest rollup whose width divides the step and whose buckets
lie wholly in the range and wholly in one step bucket; where a bucket does not (the range cuts it, or
float rounding puts its first and last sample in different step buckets) it goes down to the next
narrower width for that bucket's span, and finally to the raw samples. Every sample in the range is
counted exactly once, so the answer is the one `downsample()` gives from the raw samples, bit for bit;
a year of one series at 1,000 buckets costs about 1,000 rollup rows and a few edge minutes of samples.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

from perfmon.domain.downsampling import UNIT_EXPONENT, BucketTotals, bucket_totals, downsample
from perfmon.domain.model import Bucket, SampleSeries, TimeRange, bucket_start

# Seconds: a minute, an hour and a UTC day. Each divides the next, and all are aligned on the epoch,
# so a bucket of one width lies in exactly one bucket of every wider width.
ROLLUP_WIDTHS: tuple[float, ...] = (60.0, 3600.0, 86400.0)
DAY = 86400.0


class RollupBucket(NamedTuple):
    """The totals of one series' samples in one `width`-second bucket that starts at `start`.

    `total` is the exact sum in units of 2^-1074 (downsampling.exact_sum); `low`/`high` the least and
    greatest value with -0.0 below 0.0; `first`/`last` the earliest and latest sample time in it.
    A named tuple rather than a dataclass: storages make one per stored row, a year of hours is 8,760.
    """

    width: float
    start: float
    # Shadows tuple.count(), which nothing here calls: the field's name is the domain's word.
    count: int  # type: ignore[assignment]
    total: int
    low: float
    high: float
    first: float
    last: float

    @classmethod
    def of(cls, width: float, start: float, values: Sequence[float], times: Sequence[float]) -> RollupBucket:
        """The bucket of the (non-empty) values taken at the times, all in the bucket at start."""
        totals = BucketTotals.of(start, values)
        return cls(width, start, totals.count, totals.total, totals.low, totals.high, min(times), max(times))

    def merged(self, other: RollupBucket) -> RollupBucket:
        """The bucket of both sets of samples; ValueError unless they are of the same bucket."""
        if (other.width, other.start) != (self.width, self.start):
            raise ValueError("only partials of the same bucket merge")
        totals = self.totals().merged(other.totals())
        return RollupBucket(
            self.width,
            self.start,
            totals.count,
            totals.total,
            totals.low,
            totals.high,
            min(self.first, other.first),
            max(self.last, other.last),
        )

    def totals(self) -> BucketTotals:
        """The bucket's exact totals, placed at `start`."""
        return self.totals_at(self.start)

    def totals_at(self, start: float) -> BucketTotals:
        """The bucket's exact totals, as part of the (wider) bucket that starts at `start`."""
        return BucketTotals(start, self.count, self.total, self.low, self.high)


def check_width(width: float) -> float:
    """ValueError unless the width is one of ROLLUP_WIDTHS (a storage keeps no other)."""
    if width not in ROLLUP_WIDTHS:
        raise ValueError(f"rollups are {ROLLUP_WIDTHS} seconds wide, not {width!r}")
    return width


def rollup(series: SampleSeries, width: float) -> list[RollupBucket]:
    """The `width`-second rollup buckets of the values, oldest first (for storages without a query engine)."""
    slices: dict[float, tuple[list[float], list[float]]] = {}
    for value, moment in zip(series.values, series.taken_at, strict=True):
        values, times = slices.setdefault(bucket_start(moment, width), ([], []))
        values.append(value)
        times.append(moment)
    return [RollupBucket.of(width, start, *columns) for start, columns in sorted(slices.items())]


# No quotient t / w of a time t < 1e11 (MAX_TIMESTAMP) is rounded by more than t * 2^-53 < 1.2e-5 s of
# time: a time this far inside a bucket's edges has that bucket's start as its bucket_start().
_SURELY_INSIDE = 1e-4


def rollups_of(
    series: SampleSeries, widths: Sequence[float] = ROLLUP_WIDTHS
) -> dict[float, list[RollupBucket]]:
    """The rollup buckets of the values at each width, oldest first: `rollup(series, width)` for each,
    at a fraction of the cost (a background roll-up pass sums every sample at three widths).

    The samples are grouped once, at the narrowest width, without dividing a time that lies surely
    inside the bucket of the one before (samples come in time order); a wider bucket adds up the
    narrower buckets whose first and last sample fall in it, and only a narrower bucket that straddles
    its edge (float rounding) has its samples placed one by one."""
    ordered = sorted(widths)
    narrowest = ordered[0]
    groups: dict[float, tuple[list[float], list[float]]] = {}
    low = high = math.nan  # no time compares within NaN bounds: the first sample finds its bucket
    values: list[float] = []
    times: list[float] = []
    for value, moment in zip(series.values, series.taken_at, strict=True):
        if not low <= moment < high:
            start = bucket_start(moment, narrowest)
            values, times = groups.setdefault(start, ([], []))
            low, high = start + _SURELY_INSIDE, start + narrowest - _SURELY_INSIDE
        values.append(value)
        times.append(moment)
    narrow = [RollupBucket.of(narrowest, start, *groups[start]) for start in sorted(groups)]
    found = {narrowest: narrow}
    for width in ordered[1:]:
        wide: dict[float, RollupBucket] = {}
        for bucket in narrow:
            start = bucket_start(bucket.first, width)
            if bucket_start(bucket.last, width) == start:
                _add_to(wide, bucket._replace(width=width, start=start))
                continue
            for value, moment in zip(*groups[bucket.start], strict=True):
                _add_to(wide, RollupBucket.of(width, bucket_start(moment, width), [value], [moment]))
        found[width] = [wide[start] for start in sorted(wide)]
    return found


def _add_to(buckets: dict[float, RollupBucket], part: RollupBucket) -> None:
    known = buckets.get(part.start)
    buckets[part.start] = part if known is None else known.merged(part)


def merge_partials(partials: Iterable[RollupBucket]) -> list[RollupBucket]:
    """Partial rows of buckets (any order, one width) merged into one per bucket, oldest first."""
    merged: dict[float, RollupBucket] = {}
    for partial in partials:
        known = merged.get(partial.start)
        merged[partial.start] = partial if known is None else known.merged(partial)
    return [merged[start] for start in sorted(merged)]


def overlapping(buckets: Iterable[RollupBucket], time_range: TimeRange) -> list[RollupBucket]:
    """The buckets whose first..last span meets the range (what SampleRepository.rollups returns)."""
    return [
        bucket
        for bucket in buckets
        if (time_range.start is None or bucket.last >= time_range.start)
        and (time_range.end is None or bucket.first <= time_range.end)
    ]


def widths_dividing(step: float) -> list[float]:
    """The rollup widths that divide the step exactly, widest first: the rollups a `step` read can use."""
    return [width for width in reversed(ROLLUP_WIDTHS) if step >= width and math.fmod(step, width) == 0]


def day_start(moment: float) -> float:
    """The start d of the UTC day holding the moment, d <= moment < d + 86400 (seconds since the epoch):
    storages split raw samples by it, and retention drops whole days.

    Compared, not only divided: a quotient that rounds up to a whole number would put a moment an ulp
    before midnight in the next day, where a comparison (a PostgreSQL partition bound) would not."""
    start = math.floor(moment / DAY) * DAY
    if start > moment:
        return start - DAY
    if moment >= start + DAY:
        return start + DAY
    return start


class SeriesSource(Protocol):
    """One series of one session, as a step read needs it (a SampleRepository bound to both)."""

    def between(self, time_range: TimeRange) -> SampleSeries:
        """The raw samples within the range."""

    def rollups(self, width: float, time_range: TimeRange) -> list[RollupBucket]:
        """The rollup buckets of the width whose first..last span meets the range."""


def stepped_buckets(source: SeriesSource, time_range: TimeRange, step: float) -> list[Bucket]:
    """The series' samples within the range in one Bucket per step-wide slice of time, oldest first.

    Exactly `downsample(source.between(time_range), step)`, read from the rollups where they serve.
    """
    widths = widths_dividing(step)
    if not widths:
        return downsample(source.between(time_range), step)
    totals: dict[float, BucketTotals] = {}
    raw = SampleSeries([], [])
    _collect(source, time_range, step, widths, totals, raw)
    for part in bucket_totals(raw, step):
        _merge(totals, part)
    return [totals[start].bucket() for start in sorted(totals)]


def _collect(
    source: SeriesSource,
    time_range: TimeRange,
    step: float,
    widths: list[float],
    totals: dict[float, BucketTotals],
    raw: SampleSeries,
) -> None:
    """Add the samples within the range to totals (from rollups of widths[0]) or to raw (what no
    rollup serves), each exactly once."""
    if not widths:
        found = source.between(time_range)
        raw.values.extend(found.values)
        raw.taken_at.extend(found.taken_at)
        return
    low = -math.inf if time_range.start is None else time_range.start
    high = math.inf if time_range.end is None else time_range.end
    for bucket in source.rollups(widths[0], time_range):
        # bucket_start() is monotonic in time: when the first and last sample fall in one step bucket,
        # every sample in between does (a guard against float rounding at a step's edge).
        step_start = bucket_start(bucket.first, step)
        if low <= bucket.first and bucket.last <= high and bucket_start(bucket.last, step) == step_start:
            known = totals.get(step_start)
            part = BucketTotals(step_start, bucket.count, bucket.total, bucket.low, bucket.high)
            totals[step_start] = part if known is None else known.merged(part)
            continue
        # Only this bucket's samples lie between its first and last (buckets are disjoint in time).
        narrower = TimeRange(max(low, bucket.first), min(high, bucket.last))
        _collect(source, narrower, step, widths[1:], totals, raw)


def _merge(totals: dict[float, BucketTotals], part: BucketTotals) -> None:
    known = totals.get(part.start)
    totals[part.start] = part if known is None else known.merged(part)


# Exact sums as text, for storages that keep rollups in text files: C99's hexadecimal floating-point
# notation with an integer mantissa of any length, `[-]0x<hex>p<exponent>`, the value mantissa * 2^exponent.
_EXACT_SUM = re.compile(r"(-?)0x([0-9a-f]+)p(-?[0-9]+)")


def exact_sum_text(total: int) -> str:
    """The exact sum `total` (units of 2^-1074) as `[-]0x<odd hex mantissa>p<exponent>`, or `0x0p0`.

    Short for real data: 60 values of 0..100 with a decimal or two take about 20 characters, where the
    integer count of units would take over 300 digits."""
    if total == 0:
        return "0x0p0"
    sign = "-" if total < 0 else ""
    magnitude = abs(total)
    zeros = (magnitude & -magnitude).bit_length() - 1
    return f"{sign}0x{magnitude >> zeros:x}p{zeros - UNIT_EXPONENT}"


def parse_exact_sum(text: str) -> int:
    """The sum written by exact_sum_text, in units of 2^-1074; ValueError for anything else."""
    match = _EXACT_SUM.fullmatch(text)
    if match is None:
        raise ValueError("not an exact sum")
    sign, mantissa, exponent = match.groups()
    shift = int(exponent) + UNIT_EXPONENT
    if shift < 0:
        raise ValueError("an exact sum below 2^-1074")
    value = int(mantissa, 16) << shift
    return -value if sign else value
