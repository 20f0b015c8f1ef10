"""Decoding the bytes that a PostgreSQL sample read gets (sample_reads.py): every double as it was sent,
samples in their order, an answer out of time order refused (then read again with the order the server
guarantees), and bytes that are no whole number of samples refused, never misread. The bytes are built
here as float8send makes them; the contract suites read them from a real server."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmon.adapters.postgres.sample_reads import in_time_order, pairs_of
from perfmon.domain.model import MAX_TIMESTAMP, SampleSeries


def _sent(pairs: list[tuple[float, float]]) -> bytes:
    """The samples as the server's string_agg(float8send(value) || float8send(taken_at)) gives them."""
    return b"".join(struct.pack(">dd", value, moment) for value, moment in pairs)


def _bits(column: list[float]) -> list[bytes]:
    return [struct.pack("<d", number) for number in column]


_doubles = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [-0.0, 0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308]
)
_times = st.floats(min_value=0, max_value=MAX_TIMESTAMP, exclude_max=True) | st.sampled_from(
    [-0.0, 0.0, 5e-324, 1e-310, MAX_TIMESTAMP - 1e-5]
)


@settings(max_examples=300)
@given(pairs=st.lists(st.tuples(_doubles, _times), max_size=200))
def test_samples_come_back_bit_for_bit_in_their_order(pairs: list[tuple[float, float]]) -> None:
    values, taken_at = pairs_of(_sent(pairs))
    assert _bits(values) == _bits([value for value, _ in pairs])
    assert _bits(taken_at) == _bits([moment for _, moment in pairs])


@settings(max_examples=300)
@given(pairs=st.lists(st.tuples(_doubles, _times), max_size=50))
def test_an_answer_is_taken_only_when_its_times_strictly_increase(pairs: list[tuple[float, float]]) -> None:
    times = [moment for _, moment in pairs]
    found = in_time_order(_sent(pairs))
    if all(earlier < later for earlier, later in zip(times, times[1:], strict=False)):
        assert found is not None
        assert _bits(found.values) == _bits([value for value, _ in pairs])
        assert _bits(found.taken_at) == _bits(times)
    else:
        assert found is None


def test_equal_times_and_zeros_of_both_signs_are_left_to_the_ordered_read() -> None:
    # -0.0 and 0.0 are one time to PostgreSQL's order, which then goes by id: not known from the bytes.
    assert in_time_order(_sent([(1.0, -0.0), (2.0, 0.0)])) is None
    assert in_time_order(_sent([(1.0, 5.0), (2.0, 5.0)])) is None
    assert in_time_order(_sent([(1.0, 6.0), (2.0, 5.0)])) is None
    assert in_time_order(_sent([(1.0, 5.0), (2.0, 6.0)])) == SampleSeries([1.0, 2.0], [5.0, 6.0])


def test_no_samples_and_no_rows_are_empty_columns() -> None:
    assert pairs_of(b"") == ([], [])
    assert pairs_of(None) == ([], [])
    assert in_time_order(None) == SampleSeries([], [])


@pytest.mark.parametrize("size", [1, 8, 15, 17, 31])
def test_bytes_that_are_no_whole_number_of_samples_are_refused(size: int) -> None:
    with pytest.raises(ValueError):
        pairs_of(bytes(size))
