"""The bucket figures' one definition: exact sums of doubles, and totals that merge."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from perfmon.domain.downsampling import BucketTotals, exact_sum

LARGEST = 1.7976931348623157e308
values = st.lists(
    st.one_of(
        st.sampled_from([0.0, -0.0, 5e-324, 1e-310, 2.2250738585072014e-308, 1e300, LARGEST]),
        st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None, database=None)
@given(values)
def test_exact_sum_is_the_exact_sum_of_the_doubles_even_past_the_largest_double(cpus: list[float]) -> None:
    assert Fraction(exact_sum(cpus), 2**1074) == sum(map(Fraction, cpus))


@settings(max_examples=300, deadline=None, database=None)
@given(values, values)
def test_totals_of_two_parts_of_a_bucket_merge_into_the_totals_of_the_whole(
    first: list[float], second: list[float]
) -> None:
    merged = BucketTotals.of(60.0, first).merged(BucketTotals.of(60.0, second))
    whole = BucketTotals.of(60.0, first + second)
    assert (merged.count, merged.total, merged.low.hex(), merged.high.hex()) == (
        whole.count,
        whole.total,
        whole.low.hex(),
        whole.high.hex(),
    )
    assert merged.bucket().mean.hex() == whole.bucket().mean.hex()


def test_a_mean_is_rounded_once_from_the_exact_sum() -> None:
    # 0.1 + 0.2 + 0.4 in doubles is 0.7000000000000001: a float sum then a division rounds twice.
    (mean,) = [BucketTotals.of(0.0, [0.1, 0.2, 0.4]).bucket().mean]
    assert mean == float((Fraction(0.1) + Fraction(0.2) + Fraction(0.4)) / 3)
