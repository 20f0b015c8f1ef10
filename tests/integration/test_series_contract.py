"""One behaviour suite for the sample ports (SampleRepository, HistoryMaintenance), run against every
storage adapter: named series, rollups exact against the raw samples, retention."""

from __future__ import annotations

import math
import struct
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfmon.domain.downsampling import downsample
from perfmon.domain.errors import UnknownSession
from perfmon.domain.model import (
    EVERYTHING,
    MAX_TIMESTAMP,
    NO_SAMPLES,
    Bucket,
    Point,
    Sample,
    SampleSeries,
    SampleSummary,
    Session,
    TimeRange,
    User,
    Username,
)
from perfmon.domain.rollups import (
    DAY,
    ROLLUP_WIDTHS,
    day_start,
    overlapping,
    rollup,
    stepped_buckets,
)
from tests.storage_kinds import Repositories, StoredSeries

TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"
OTHER_TOKEN = "7d1f0f5e-2c3b-4a9e-8f6d-1a2b3c4d5e6f"
# Noon, 2023-11-14 UTC, and the start of that day.
NOON = 1_699_963_200.0
DAY_ONE = day_start(NOON)


def _open(repos: Repositories, token: str = TOKEN, name: str = "alice") -> str:
    if repos.users.get(Username(name)) is None:
        repos.users.add(User(Username(name), "argon2id-hash-of-secret"))
    repos.sessions.add(Session(token=token, user=Username(name), created_at=1_700_000_000.25))
    return token


def _cpu(value: float, moment: float) -> Sample:
    return Sample(moment, {"cpu": value})


def _stored_batches(
    repos: Repositories, batches: list[list[tuple[float, float]]], maintain_between: bool
) -> str:
    """A new session holding the batches of (value, time) cpu samples, appended in order; with
    maintain_between, a maintenance pass after each (closed days compacted, late samples after)."""
    token = _open(repos, str(uuid.uuid4()))
    for batch in batches:
        repos.samples.append(token, [_cpu(*pair) for pair in batch])
        if maintain_between:
            repos.maintenance.maintain(NOON + 3 * DAY)
    return token


def _ordered_range(bounds: tuple[float | None, float | None]) -> TimeRange:
    """The range between the bounds, whichever comes first."""
    start, end = bounds
    if start is not None and end is not None and start > end:
        start, end = end, start
    return TimeRange(start, end)


def _points(pairs: list[tuple[float, float]]) -> list[Point]:
    return [Point(value, moment) for value, moment in pairs]


def _bits(buckets: list[Bucket]) -> list[tuple[object, ...]]:
    """Buckets with every float as its bit pattern: -0.0 and 0.0 differ, as they must."""
    return [tuple(struct.pack("<d", f) if isinstance(f, float) else f for f in bucket) for bucket in buckets]


# Named series -----------------------------------------------------------------------------------------


def test_appended_samples_come_back_exactly_in_order(repositories: Repositories) -> None:
    _open(repositories)
    pairs = [(0.1 + 0.2, 1_700_000_000.123456789), (5e-324, 0.0), (100.0, 1e11 - 1)]
    repositories.samples.append(TOKEN, [_cpu(*pairs[0])])
    repositories.samples.append(TOKEN, [_cpu(*pair) for pair in pairs[1:]])
    got = repositories.samples.between(TOKEN, "cpu", EVERYTHING)
    assert got == _points(sorted(pairs, key=lambda pair: pair[1]))


def test_metrics_of_one_sample_land_in_their_own_series(repositories: Repositories) -> None:
    _open(repositories)
    repositories.samples.append(
        TOKEN,
        [
            Sample(NOON, {"cpu": 12.5, "mem": 41.0, "temp": -7.25}),
            Sample(NOON + 1, {"cpu": 13.0}),
            Sample(NOON + 2, {"mem": 40.5, "disk_read": 1e9}),
        ],
    )
    samples = repositories.samples
    assert samples.between(TOKEN, "cpu", EVERYTHING) == _points([(12.5, NOON), (13.0, NOON + 1)])
    assert samples.between(TOKEN, "mem", EVERYTHING) == _points([(41.0, NOON), (40.5, NOON + 2)])
    assert samples.between(TOKEN, "temp", EVERYTHING) == _points([(-7.25, NOON)])
    assert samples.between(TOKEN, "swap", EVERYTHING) == []
    assert samples.metrics(TOKEN) == ["cpu", "disk_read", "mem", "temp"]
    assert samples.metrics(OTHER_TOKEN) == []


def test_equal_times_keep_arrival_order(repositories: Repositories) -> None:
    _open(repositories)
    samples = [_cpu(float(i), 10.0) for i in range(5)] + [_cpu(9.0, 5.0)]
    repositories.samples.append(TOKEN, samples)
    got = repositories.samples.between(TOKEN, "cpu", EVERYTHING)
    assert got == _points([(9.0, 5.0)] + [(float(i), 10.0) for i in range(5)])


def test_between_keeps_only_the_inclusive_range(repositories: Repositories) -> None:
    _open(repositories)
    repositories.samples.append(TOKEN, [_cpu(float(t), float(t)) for t in range(10)])

    def times(time_range: TimeRange) -> list[float]:
        return repositories.samples.between(TOKEN, "cpu", time_range).taken_at

    assert times(TimeRange(3.0, 6.0)) == [3.0, 4.0, 5.0, 6.0]
    assert times(TimeRange(start=8.0)) == [8.0, 9.0]
    assert times(TimeRange(end=1.0)) == [0.0, 1.0]


def test_samples_across_days_and_late_ones_come_back_in_time_order(repositories: Repositories) -> None:
    _open(repositories)
    # Three days in one batch, then samples of the first day arriving late and out of order.
    batch = [_cpu(float(i), DAY_ONE + i * 3600.0) for i in range(72)]
    repositories.samples.append(TOKEN, batch)
    late = [_cpu(100.0, DAY_ONE + 1800.0), _cpu(101.0, DAY_ONE + 900.0), _cpu(102.0, DAY_ONE + 1800.0)]
    repositories.samples.append(TOKEN, late)
    repositories.maintenance.maintain(DAY_ONE + 5 * DAY)
    expected = sorted(
        [(float(i), DAY_ONE + i * 3600.0) for i in range(72)]
        + [(100.0, DAY_ONE + 1800.0), (101.0, DAY_ONE + 900.0), (102.0, DAY_ONE + 1800.0)],
        key=lambda pair: pair[1],
    )
    assert repositories.samples.between(TOKEN, "cpu", EVERYTHING) == _points(expected)
    second_day = TimeRange(DAY_ONE + DAY, DAY_ONE + 2 * DAY - 1)
    assert repositories.samples.between(TOKEN, "cpu", second_day) == _points(expected[27:51])


# Any finite double, -0.0 and the extremes often; times anywhere a sample may be, within a day of NOON
# (days closed and compacted by maintenance, and open ones), and quarter days, so that times are equal.
_exact_values = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [-0.0, 0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308]
)
_exact_times = (
    st.floats(min_value=0, max_value=MAX_TIMESTAMP, exclude_max=True)
    | st.integers(-4, 4).map(lambda quarter_days: NOON + quarter_days * DAY / 4)
    | st.floats(min_value=NOON - DAY, max_value=NOON + DAY)
    | st.sampled_from([-0.0, 0.0, 5e-324, MAX_TIMESTAMP - 1e-5])
)


def _column_bits(series: SampleSeries) -> list[tuple[bytes, bytes]]:
    return [(struct.pack("<d", point.value), struct.pack("<d", point.taken_at)) for point in series]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.tuples(_exact_values, _exact_times), min_size=1, max_size=40), min_size=1, max_size=3
    ),
    bounds=st.tuples(st.none() | _exact_times, st.none() | _exact_times),
    maintain_between=st.booleans(),
)
def test_raw_samples_of_any_finite_floats_come_back_bit_for_bit_in_time_then_arrival_order(
    repositories: Repositories,
    batches: list[list[tuple[float, float]]],
    bounds: tuple[float | None, float | None],
    maintain_between: bool,
) -> None:
    token = _stored_batches(repositories, batches, maintain_between)
    time_range = _ordered_range(bounds)
    pairs = [pair for batch in batches for pair in batch]
    expected = SampleSeries([v for v, _ in pairs], [t for _, t in pairs]).within(time_range)
    assert _column_bits(repositories.samples.between(token, "cpu", time_range)) == _column_bits(expected)


def test_new_session_has_no_samples_and_sessions_do_not_mix(repositories: Repositories) -> None:
    _open(repositories)
    _open(repositories, OTHER_TOKEN)
    repositories.samples.append(TOKEN, [_cpu(1.0, 1.0)])
    assert repositories.samples.between(OTHER_TOKEN, "cpu", EVERYTHING) == []
    assert repositories.samples.rollups(OTHER_TOKEN, "cpu", 60.0, EVERYTHING) == []


def test_concurrent_appends_lose_nothing(repositories: Repositories) -> None:
    _open(repositories)

    def post(thread_index: int) -> None:
        for i in range(50):
            repositories.samples.append(TOKEN, [Sample(NOON + i, {"cpu": float(thread_index), "mem": 1.0})])

    threads = [threading.Thread(target=post, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = repositories.samples.between(TOKEN, "cpu", EVERYTHING)
    assert sorted(stored, key=lambda p: (p.value, p.taken_at)) == sorted(
        (Point(float(t), NOON + i) for t in range(16) for i in range(50)), key=lambda p: (p.value, p.taken_at)
    )
    (minute,) = repositories.samples.rollups(TOKEN, "mem", 60.0, EVERYTHING)
    assert minute.count == 800


@pytest.mark.parametrize("count", [1, 3], ids=["one sample", "a batch"])
def test_appending_to_an_unknown_session_raises_unknown_session_and_stores_nothing(
    repositories: Repositories, count: int
) -> None:
    # The domain checks the session first: this is the race of a session that vanished since.
    _open(repositories)
    with pytest.raises(UnknownSession):
        repositories.samples.append(OTHER_TOKEN, [_cpu(1.0, float(t)) for t in range(count)])
    assert repositories.samples.between(OTHER_TOKEN, "cpu", EVERYTHING) == []
    assert repositories.samples.summaries([OTHER_TOKEN], "cpu").get(OTHER_TOKEN, NO_SAMPLES) == NO_SAMPLES
    repositories.samples.append(TOKEN, [_cpu(2.0, 2.0)])
    assert repositories.samples.between(TOKEN, "cpu", EVERYTHING) == [Point(2.0, 2.0)]


def test_an_append_to_an_unknown_session_fails_alone_among_concurrent_appends(
    repositories: Repositories,
) -> None:
    _open(repositories)
    # Together, so that a storage that writes concurrent appends as one group (PostgreSQL) gets them in one.
    start = threading.Barrier(9)
    failures: dict[str, BaseException] = {}

    def post(token: str, thread_index: int) -> None:
        start.wait(timeout=10)
        try:
            repositories.samples.append(token, [_cpu(float(thread_index), float(i)) for i in range(20)])
        except Exception as error:  # noqa: BLE001 - recorded and asserted on below
            failures[f"{token}/{thread_index}"] = error

    threads = [threading.Thread(target=post, args=(TOKEN, t)) for t in range(8)]
    threads.append(threading.Thread(target=post, args=(OTHER_TOKEN, 8)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert list(failures) == [f"{OTHER_TOKEN}/8"]
    assert isinstance(failures[f"{OTHER_TOKEN}/8"], UnknownSession)
    assert len(repositories.samples.between(TOKEN, "cpu", EVERYTHING)) == 8 * 20


def test_a_batch_of_ten_thousand_samples_in_one_append_is_stored_whole(repositories: Repositories) -> None:
    _open(repositories)
    pairs = [((i * 7.3) % 100, 1_700_000_000 + i * 0.001) for i in range(10_000)]
    repositories.samples.append(TOKEN, [_cpu(*pair) for pair in pairs])
    assert repositories.samples.between(TOKEN, "cpu", EVERYTHING) == _points(pairs)


# Summaries --------------------------------------------------------------------------------------------


def test_summaries_count_samples_and_their_first_and_last_times(repositories: Repositories) -> None:
    _open(repositories)
    _open(repositories, OTHER_TOKEN)
    repositories.samples.append(TOKEN, [_cpu(1.0, 30.0), _cpu(2.0, 10.0), _cpu(3.0, 20.0 + DAY)])
    repositories.samples.append(TOKEN, [Sample(40.0, {"mem": 1.0})])
    summaries = repositories.samples.summaries([TOKEN, OTHER_TOKEN], "cpu")
    assert summaries[TOKEN] == SampleSummary(3, 10.0, 20.0 + DAY)
    assert summaries.get(OTHER_TOKEN, NO_SAMPLES) == NO_SAMPLES
    assert repositories.samples.summaries([TOKEN], "mem")[TOKEN] == SampleSummary(1, 40.0, 40.0)


# Rollups ----------------------------------------------------------------------------------------------


def test_rollups_hold_each_buckets_exact_totals_and_first_and_last(repositories: Repositories) -> None:
    _open(repositories)
    pairs = [(10.0, NOON), (20.0, NOON + 59.5), (5.0, NOON + 60.0), (-0.0, NOON + 61.0), (0.0, NOON + 3600.0)]
    repositories.samples.append(TOKEN, [_cpu(*pair) for pair in pairs])
    raw = SampleSeries([v for v, _ in pairs], [t for _, t in pairs])
    for width in ROLLUP_WIDTHS:
        assert repositories.samples.rollups(TOKEN, "cpu", width, EVERYTHING) == rollup(raw, width)
    # Only the buckets whose first..last span meets the range.
    (second_minute,) = repositories.samples.rollups(TOKEN, "cpu", 60.0, TimeRange(NOON + 60.5, NOON + 61.0))
    assert (second_minute.start, second_minute.count, second_minute.first) == (NOON + 60.0, 2, NOON + 60.0)
    assert repositories.samples.rollups(TOKEN, "cpu", 60.0, TimeRange(NOON + 62.0, NOON + 3599.0)) == []


def test_rollups_include_samples_the_moment_they_are_appended_and_after_maintenance(
    repositories: Repositories,
) -> None:
    _open(repositories)
    repositories.samples.append(TOKEN, [_cpu(1.0, NOON), _cpu(2.0, NOON + 1)])
    repositories.maintenance.maintain(NOON + 10)
    repositories.samples.append(TOKEN, [_cpu(4.0, NOON + 2)])
    (minute,) = repositories.samples.rollups(TOKEN, "cpu", 60.0, EVERYTHING)
    assert (minute.count, minute.last) == (3, NOON + 2)
    repositories.maintenance.maintain(NOON + 20)
    repositories.maintenance.maintain(NOON + 20)
    assert repositories.samples.rollups(TOKEN, "cpu", 60.0, EVERYTHING) == [minute]


_values = st.floats(allow_nan=False, allow_infinity=False)
_times = st.floats(min_value=0, max_value=MAX_TIMESTAMP, exclude_max=True) | st.floats(
    min_value=NOON - 2 * DAY, max_value=NOON + 2 * DAY
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.lists(st.tuples(_values, _times), min_size=1, max_size=30), min_size=1, max_size=3),
    step=st.sampled_from([60.0, 180.0, 3600.0, 7200.0, 86400.0, 90.0]),
    bounds=st.tuples(st.none() | _times, st.none() | _times),
    maintain_between=st.booleans(),
)
def test_step_reads_from_the_stored_rollups_equal_the_raw_answer(
    repositories: Repositories,
    batches: list[list[tuple[float, float]]],
    step: float,
    bounds: tuple[float | None, float | None],
    maintain_between: bool,
) -> None:
    token = _stored_batches(repositories, batches, maintain_between)
    time_range = _ordered_range(bounds)
    pairs = [pair for batch in batches for pair in batch]
    everything = SampleSeries([v for v, _ in pairs], [t for _, t in pairs])
    raw = everything.within(time_range)
    for width in ROLLUP_WIDTHS:
        stored = repositories.samples.rollups(token, "cpu", width, time_range)
        assert stored == overlapping(rollup(everything, width), time_range)
    assert _bits(stepped_buckets(StoredSeries(repositories, token, "cpu"), time_range, step)) == _bits(
        downsample(raw, step)
    )


# Retention --------------------------------------------------------------------------------------------


def _three_days(repositories: Repositories) -> list[tuple[float, float]]:
    """Samples every 10 minutes over three days from DAY_ONE, two metrics, appended and maintained."""
    _open(repositories)
    pairs = [(float(i % 97), DAY_ONE + i * 600.0) for i in range(3 * 144)]
    repositories.samples.append(TOKEN, [Sample(t, {"cpu": v, "mem": v / 2}) for v, t in pairs])
    repositories.maintenance.maintain(DAY_ONE + 3 * DAY + 60)
    return pairs


def test_a_dry_run_prune_reports_and_changes_nothing(repositories: Repositories) -> None:
    pairs = _three_days(repositories)
    report = repositories.maintenance.prune(DAY_ONE + DAY + 3600, DAY_ONE + DAY + 3600, apply=False)
    assert not report.applied
    # The first day of each of the two series, raw and rolled up.
    assert report.raw_units >= 2 and report.rollup_units >= 2
    assert repositories.samples.between(TOKEN, "cpu", EVERYTHING) == _points(pairs)


def test_pruning_raw_samples_drops_whole_days_before_the_cutoff_and_keeps_the_rollups(
    repositories: Repositories,
) -> None:
    pairs = _three_days(repositories)
    hours_before = repositories.samples.rollups(TOKEN, "cpu", 3600.0, EVERYTHING)
    summary_before = repositories.samples.summaries([TOKEN], "cpu")[TOKEN]
    report = repositories.maintenance.prune(DAY_ONE + DAY + 3600, None, apply=True)
    assert report.applied and report.raw_units >= 2 and report.rollup_units == 0
    # What lies before the cutoff's day is gone; the rest of the cutoff's day and after stay.
    kept = [pair for pair in pairs if pair[1] >= DAY_ONE + DAY]
    assert repositories.samples.between(TOKEN, "cpu", EVERYTHING) == _points(kept)
    assert len(repositories.samples.between(TOKEN, "mem", EVERYTHING)) == len(kept)
    # Step reads still answer from the rollups, and the summary still counts every sample.
    assert repositories.samples.rollups(TOKEN, "cpu", 3600.0, EVERYTHING) == hours_before
    full = SampleSeries([v for v, _ in pairs], [t for _, t in pairs])
    from_rollups = stepped_buckets(StoredSeries(repositories, TOKEN, "cpu"), EVERYTHING, 7200.0)
    assert from_rollups == downsample(full, 7200.0)
    assert repositories.samples.summaries([TOKEN], "cpu")[TOKEN] == summary_before
    # Appends go on, even into the pruned day.
    repositories.samples.append(TOKEN, [_cpu(1.0, DAY_ONE + 5.0), _cpu(2.0, DAY_ONE + 3 * DAY + 5.0)])
    first_seconds = repositories.samples.between(TOKEN, "cpu", TimeRange(end=DAY_ONE + 10.0))
    assert first_seconds == [Point(1.0, DAY_ONE + 5.0)]


def test_pruning_rollups_drops_buckets_of_whole_days_before_the_cutoff(repositories: Repositories) -> None:
    pairs = _three_days(repositories)
    report = repositories.maintenance.prune(DAY_ONE + 2 * DAY + 7, DAY_ONE + 2 * DAY + 7, apply=True)
    assert report.applied and report.rollup_units >= 2
    third_day = [(v, t) for v, t in pairs if t >= DAY_ONE + 2 * DAY]
    kept = SampleSeries([v for v, _ in third_day], [t for _, t in third_day])
    for width in ROLLUP_WIDTHS:
        assert repositories.samples.rollups(TOKEN, "cpu", width, EVERYTHING) == rollup(kept, width)
    assert repositories.samples.summaries([TOKEN], "cpu")[TOKEN] == SampleSummary(
        len(kept), kept.taken_at[0], kept.taken_at[-1]
    )


def test_pruning_with_nothing_old_enough_drops_nothing(repositories: Repositories) -> None:
    pairs = _three_days(repositories)
    report = repositories.maintenance.prune(DAY_ONE - 1.0, DAY_ONE - 1.0, apply=True)
    assert (report.raw_units, report.rollup_units) == (0, 0)
    assert repositories.samples.between(TOKEN, "cpu", EVERYTHING) == _points(pairs)


def test_the_sample_times_of_a_day_boundary_are_kept_with_their_day(repositories: Repositories) -> None:
    _open(repositories)
    edge = [(1.0, math.nextafter(DAY_ONE + DAY, 0.0)), (2.0, DAY_ONE + DAY)]
    repositories.samples.append(TOKEN, [_cpu(*pair) for pair in edge])
    repositories.maintenance.maintain(DAY_ONE + 3 * DAY)
    repositories.maintenance.prune(DAY_ONE + DAY, None, apply=True)
    assert repositories.samples.between(TOKEN, "cpu", EVERYTHING) == _points(edge[1:])


def test_pruning_works_with_the_smallest_and_largest_times_the_protocol_accepts(
    repositories: Repositories,
) -> None:
    # A subnormal time broke the PostgreSQL pruner's day arithmetic (float8 division underflow) for
    # every session of the deployment; the protocol accepts any time in [0, 1e11).
    _open(repositories)
    edges = [(1.0, 5e-324), (2.0, 1e-310), (3.0, 0.0), (4.0, NOON), (5.0, 1e11 - 1)]
    repositories.samples.append(TOKEN, [_cpu(*pair) for pair in edges])
    repositories.maintenance.maintain(NOON + DAY)
    assert not repositories.maintenance.prune(NOON, NOON, apply=False).applied
    report = repositories.maintenance.prune(NOON, NOON, apply=True)
    assert report.applied and report.raw_units >= 1
    assert repositories.samples.between(TOKEN, "cpu", EVERYTHING) == _points(edges[3:])
