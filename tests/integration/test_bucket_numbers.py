"""Downsampled reads hold for every number the protocol accepts, and give the same buckets, bit for bit,
from every storage: a property-based test over the storage contract's repositories, and the values that
broke PostgreSQL over HTTP in both storage modes."""

from __future__ import annotations

import math
import uuid
from fractions import Fraction

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmon.domain.downsampling import downsample
from perfmon.domain.model import (
    EVERYTHING,
    MAX_TIMESTAMP,
    Bucket,
    CpuSample,
    SampleSeries,
    Session,
    User,
    Username,
    bucket_start,
    check_step,
)
from tests.storage_kinds import Repositories, stored_buckets

LARGEST = 1.7976931348623157e308
SMALLEST_NORMAL = 2.2250738585072014e-308
SMALLEST_SUBNORMAL = 5e-324
# The least step check_step accepts: 1e11 / step must stay finite.
LEAST_STEP = MAX_TIMESTAMP / LARGEST
EXACT_MEAN_OF_3 = float((Fraction(0.1) + Fraction(0.2) + Fraction(0.4)) / 3)

# Every finite cpu >= 0, with the edges drawn often: zeros of both signs, subnormals, the largest double.
CPU_EDGES = [0.0, -0.0, SMALLEST_SUBNORMAL, 1e-310, 1e-300, SMALLEST_NORMAL, 1e300, LARGEST, 0.1, 100.0]
cpus = st.one_of(
    st.sampled_from(CPU_EDGES),
    st.floats(min_value=0.0, max_value=100.0),
    st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
)
# Every time in [0, 1e11), subnormals included.
TIME_EDGES = [0.0, -0.0, SMALLEST_SUBNORMAL, 1e-310, SMALLEST_NORMAL, 1e-300, 59.999999999999993, 60.0]
times = st.one_of(
    st.sampled_from(TIME_EDGES),
    st.floats(min_value=0.0, max_value=MAX_TIMESTAMP, exclude_max=True),
    st.floats(min_value=1_700_000_000.0, max_value=1_700_003_600.0),
)
steps = st.one_of(
    # Multiples of 60 s are read from the stored rollups, the rest from the raw samples.
    st.sampled_from([60.0, 120.0, 3600.0, 86400.0, 1.0, 0.5, 1e-3, 1e11, LARGEST]),
    st.floats(min_value=LEAST_STEP, allow_nan=False, allow_infinity=False),
).filter(lambda step: math.isfinite(MAX_TIMESTAMP / step))


@st.composite
def bucketed_samples(draw: st.DrawFn) -> tuple[list[CpuSample], float]:
    """Samples and a step; the samples' times come from a few moments, so that buckets hold several."""
    step = check_step(draw(steps))
    moments = draw(st.lists(times, min_size=1, max_size=4))
    samples = draw(
        st.lists(st.builds(CpuSample, cpu=cpus, taken_at=st.sampled_from(moments)), min_size=1, max_size=25)
    )
    return samples, step


def _bits(bucket: Bucket) -> tuple[str, str, str, str, int]:
    """The bucket with its floats as exact hex, so -0.0 and 0.0 (and every last bit) differ."""
    return bucket.start.hex(), bucket.mean.hex(), bucket.low.hex(), bucket.high.hex(), bucket.count


def _check_buckets(repositories: Repositories, samples: list[CpuSample], step: float) -> None:
    # A session of its own per example: the storage is shared by the examples of one test.
    token = str(uuid.uuid4())
    repositories.sessions.add(Session(token=token, user=Username("alice"), created_at=1.0))
    repositories.samples.append(token, [sample.sample() for sample in samples])

    buckets = stored_buckets(repositories, token, EVERYTHING, step)

    expected = downsample(SampleSeries([s.cpu for s in samples], [s.taken_at for s in samples]), step)
    assert [_bits(b) for b in buckets] == [_bits(b) for b in expected]
    assert sum(b.count for b in buckets) == len(samples)
    for bucket in buckets:
        members = [s.cpu for s in samples if bucket_start(s.taken_at, step) == bucket.start]
        assert bucket.count == len(members)
        assert bucket.low == min(members) and bucket.high == max(members)
        assert bucket.low <= bucket.mean <= bucket.high
        if bucket.count == 1:
            assert bucket.mean.hex() == members[0].hex()


def test_buckets_of_any_accepted_numbers_are_the_domains_with_mean_within_min_and_max(
    repositories: Repositories, request: pytest.FixtureRequest
) -> None:
    repositories.users.add(User(Username("alice"), "argon2id-hash"))
    # Bounded: a postgres example costs a few round trips.
    examples = 60 if request.node.callspec.params["repositories"] == "postgres" else 150

    @settings(max_examples=examples, deadline=None, database=None)
    @given(bucketed_samples())
    def buckets_hold(case: tuple[list[CpuSample], float]) -> None:
        _check_buckets(repositories, *case)

    buckets_hold()


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # Each of these answered 500 for good, or a wrong mean, in db mode.
        ([(1e-310, 10.0)], [(0.0, 1e-310, 1e-310, 1e-310, 1)]),
        ([(1.0, 5e-324)], [(0.0, 1.0, 1.0, 1.0, 1)]),
        ([(0.0, 10.0), (1e300, 20.0)], [(0.0, 5e299, 0.0, 1e300, 2)]),
        ([(1e-300, 10.0)], [(0.0, 1e-300, 1e-300, 1e-300, 1)]),
        ([(LARGEST, 61.0), (LARGEST, 62.0)], [(60.0, LARGEST, LARGEST, LARGEST, 2)]),
        # The exact mean rounded once, not (0.1 + 0.2 + 0.4) / 3 rounded twice.
        ([(0.1, 0.0), (0.2, 1.0), (0.4, 2.0)], [(0.0, EXACT_MEAN_OF_3, 0.1, 0.4, 3)]),
    ],
)
def test_downsampled_reads_answer_the_numbers_that_broke_them(
    server_url: str, samples: list[tuple[float, float]], expected: list[tuple[float, ...]]
) -> None:
    user = {"user": f"user-{uuid.uuid4().hex[:8]}", "passwd": "pw"}
    token = requests.post(f"{server_url}/register", json=user, timeout=10).json()["hash"]
    batch = [{"cpu": cpu, "time": moment} for cpu, moment in samples]
    posted = requests.post(f"{server_url}/cpu", json={"hash": token, "samples": batch}, timeout=10)
    assert posted.status_code == 200
    # Twice: the 500 used to stay for every later read.
    for _ in range(2):
        answer = requests.get(f"{server_url}/cpu", params={"hash": token, "step": "60"}, timeout=10)
        assert answer.status_code == 200, answer.text
        got = [(b["timestamp"], b["cpu"], b["min"], b["max"], b["count"]) for b in answer.json()["payload"]]
        assert got == expected
