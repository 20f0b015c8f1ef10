"""Decoding the bytes that a PostgreSQL sample read gets (sample_reads.py): every double as it was sent,
in its order, an answer out of time order refused (then read again with the order the server
guarantees), and bytes that are no whole number of doubles refused, never misread. The bytes are built
here as float8send makes them; the contract suites read them from a real server."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmon.adapters.postgres.sample_reads import doubles_of, in_time_order
from perfmon.domain.model import MAX_TIMESTAMP, SampleSeries


def _sent(column: list[float]) -> bytes:
    """The column as the server's string_agg(float8send(column), '') gives it."""
    return b"".join(struct.pack(">d", number) for number in column)


def _bits(column: list[float]) -> list[bytes]:
    return [struct.pack("<d", number) for number in column]


_doubles = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [-0.0, 0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308]
)
_times = st.floats(min_value=0, max_value=MAX_TIMESTAMP, exclude_max=True) | st.sampled_from(
    [-0.0, 0.0, 5e-324, 1e-310, MAX_TIMESTAMP - 1e-5]
)


@settings(max_examples=300)
@given(column=st.lists(_doubles, max_size=300))
def test_doubles_come_back_bit_for_bit_in_their_order(column: list[float]) -> None:
    assert _bits(doubles_of(_sent(column))) == _bits(column)


@settings(max_examples=300)
@given(pairs=st.lists(st.tuples(_doubles, _times), max_size=50))
def test_an_answer_is_taken_only_when_its_times_strictly_increase(pairs: list[tuple[float, float]]) -> None:
    values, times = [value for value, _ in pairs], [moment for _, moment in pairs]
    found = in_time_order(_sent(values), _sent(times))
    if all(earlier < later for earlier, later in zip(times, times[1:], strict=False)):
        assert found is not None
        assert _bits(found.values) == _bits(values)
        assert _bits(found.taken_at) == _bits(times)
    else:
        assert found is None


def test_equal_times_and_zeros_of_both_signs_are_left_to_the_ordered_read() -> None:
    # -0.0 and 0.0 are one time to PostgreSQL's order, which then goes by id: not known from the bytes.
    assert in_time_order(_sent([1.0, 2.0]), _sent([-0.0, 0.0])) is None
    assert in_time_order(_sent([1.0, 2.0]), _sent([5.0, 5.0])) is None
    assert in_time_order(_sent([1.0, 2.0]), _sent([6.0, 5.0])) is None
    assert in_time_order(_sent([1.0, 2.0]), _sent([5.0, 6.0])) == SampleSeries([1.0, 2.0], [5.0, 6.0])


def test_no_rows_are_empty_columns() -> None:
    assert doubles_of(b"") == []
    assert doubles_of(None) == []
    assert in_time_order(None, None) == SampleSeries([], [])


@pytest.mark.parametrize("size", [1, 7, 9, 15, 17])
def test_bytes_that_are_no_whole_number_of_doubles_are_refused(size: int) -> None:
    with pytest.raises(ValueError):
        doubles_of(bytes(size))


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        in_time_order(_sent([1.0, 2.0]), _sent([5.0]))
