"""The file storage's reading of its text: binary search over the lines of a sorted segment, compacted
segments read by their stream index, rollup rows re-parsed only from their last row on. Pure functions
over bytes in memory, each held to the plain answer: parse everything, then sort and filter."""

from __future__ import annotations

import lzma
import math
import os
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmon.adapters.filesystem import compressed, rollup_rows, segment_search, segments
from perfmon.domain.model import MAX_TIMESTAMP, Point, SampleSeries, TimeRange
from perfmon.domain.rollups import DAY, day_start, rollup

BASE = 1_700_000_000.0
# Quarter seconds over about ten minutes: equal times, and bounds equal to a sample's time, are common.
_times = st.integers(0, 2_500).map(lambda quarters: BASE + quarters / 4)
_values = st.floats(allow_nan=False, allow_infinity=False)
_bounds = st.none() | st.integers(-10, 2_510).map(lambda quarters: BASE + quarters / 4) | _times
_damage = st.sampled_from([b"", b"garbage", b"1.0,2.0,3.0", b"nan,1700000100.0", b"cpu,time", b"\0" * 300])


def _range(start: float | None, end: float | None) -> TimeRange:
    if start is not None and end is not None and start > end:
        start, end = end, start
    return TimeRange(start, end)


def _content(pairs: list[tuple[float, float]], damage: dict[int, bytes]) -> bytes:
    lines = [f"{value!r},{moment!r}\n".encode() for value, moment in pairs]
    for position, line in sorted(damage.items(), reverse=True):
        lines.insert(min(position, len(lines)), line + b"\n")
    return b"cpu,time\n" + b"".join(lines)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.integers(0, 400).flatmap(
        lambda size: st.lists(st.tuples(_values, _times), min_size=size, max_size=size)
    ),
    damage=st.dictionaries(st.integers(0, 400), _damage, max_size=5),
    start=_bounds,
    end=_bounds,
    torn=st.sampled_from([b"", b"12.5,17000"]),
)
def test_a_range_of_a_sorted_segment_found_by_binary_search_is_the_range_of_all_its_samples(
    pairs: list[tuple[float, float]],
    damage: dict[int, bytes],
    start: float | None,
    end: float | None,
    torn: bytes,
) -> None:
    pairs.sort(key=lambda pair: pair[1])
    content = _content(pairs, damage) + torn
    time_range = _range(start, end)
    found = segment_search.read_range(
        segments.bytes_reader(content), len(content), time_range, in_time_order=True
    )
    expected = SampleSeries([v for v, _ in pairs], [t for _, t in pairs]).within(time_range)
    assert found.series == expected


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(_values, _times), max_size=300), start=_bounds, end=_bounds)
def test_a_range_of_an_unsorted_segment_is_sorted_stably(
    pairs: list[tuple[float, float]], start: float | None, end: float | None
) -> None:
    content = _content(pairs, {})
    time_range = _range(start, end)
    found = segment_search.read_range(
        segments.bytes_reader(content), len(content), time_range, in_time_order=False
    )
    assert found.series == SampleSeries([v for v, _ in pairs], [t for _, t in pairs]).within(time_range)


def test_lines_that_are_no_sample_are_counted_and_skipped() -> None:
    content = b"cpu,time\n1.0,5.0\nsecret,words\n\n2.0,inf\n3.0,6.0\n"
    parsed = segments.parse(content)
    assert parsed.series == SampleSeries([1.0, 3.0], [5.0, 6.0])
    assert parsed.unreadable == 3


def _bits(series: SampleSeries) -> tuple[list[bytes], list[bytes]]:
    """The columns as bit patterns: -0.0 and 0.0 differ, as they must."""
    return [struct.pack("<d", v) for v in series.values], [struct.pack("<d", t) for t in series.taken_at]


# Any finite double, its extremes and -0.0 often; times anywhere a sample may be, and equal ones.
_any_values = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [-0.0, 0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 2.2250738585072014e-308]
)
_any_times = (
    st.floats(min_value=0, max_value=MAX_TIMESTAMP, exclude_max=True)
    | st.sampled_from([-0.0, 0.0, 5e-324, 1e-310, MAX_TIMESTAMP - 1e-5])
    | _times
)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(_any_values, _any_times), max_size=300), header=st.booleans())
def test_segment_lines_of_any_finite_floats_read_back_bit_for_bit_in_their_order(
    pairs: list[tuple[float, float]], header: bool
) -> None:
    written = SampleSeries([v for v, _ in pairs], [t for _, t in pairs])
    content = (b"cpu,time\n" if header else b"") + segments.lines_of(written.values, written.taken_at)
    parsed = segments.parse(content)
    assert _bits(parsed.series) == _bits(written)
    assert parsed.unreadable == 0


def _parsed_by_float(content: bytes) -> segments.Parsed:
    """The parse before lines were read as JSON, every number by float(): the lines at once when the
    commas and newlines pair up and every number is a finite float and every time in range, else line by
    line. What segments.parse must still give for any content."""
    content = content[: content.rfind(b"\n") + 1]
    first_line_end = content.find(b"\n")
    if re.fullmatch(rb"[a-z][a-z0-9_]{0,63},time", content[:first_line_end]):
        content = content[first_line_end + 1 :]
    if content.count(b",") == content.count(b"\n"):
        try:
            numbers = list(map(float, content.replace(b"\n", b",").split(b",")[:-1]))
        except ValueError:
            numbers = None
        if numbers is not None:
            values, times = numbers[0::2], numbers[1::2]
            if not times or (
                all(map(math.isfinite, numbers)) and min(times) >= 0 and max(times) < MAX_TIMESTAMP
            ):
                return segments.Parsed(SampleSeries(values, times))
    parsed = segments.Parsed(SampleSeries([], []))
    for line in content.split(b"\n")[:-1]:
        moment = segments.time_of(line)
        if moment is not None:
            parsed.series.values.append(float(line.split(b",")[0]))
            parsed.series.taken_at.append(moment)
        elif not re.fullmatch(rb"[a-z][a-z0-9_]{0,63},time", line):
            parsed.unreadable += 1
    return parsed


# Lines a hand, a torn write or a bad disk may leave: numbers that JSON reads otherwise than float() or
# not at all (integers, "-0", an exponent past a double, "1_000.5", ".5", "+1"), JSON that is no number,
# and bytes that are neither.
_edited_numbers = st.sampled_from(
    [
        "2", "-0", "0", "18446744073709551617", "-9223372036854775809", "1e400", "-1e400", "1e-400", "1E5",
        "1.5e+16", ".5", "5.", "+1.5", "01.5", "1_000.5", " 2.5", "2.5 ", "\t3.0", "nan", "inf", "-inf",
        "Infinity", "NaN", "-1.0", "1e11", "99999999999.99999", "true", "null", '"1.5"', "[1.5]", "{}", "[",
        "]", "", "0x10", "1.0\r",
    ]
)  # fmt: skip
_edited_lines = (
    st.tuples(_edited_numbers | _any_values.map(repr), _edited_numbers | _any_times.map(repr)).map(
        lambda fields: f"{fields[0]},{fields[1]}".encode()
    )
    | _edited_numbers.map(str.encode)
    | _damage
    | st.binary(max_size=12).map(lambda line: line.replace(b"\n", b""))
    | st.text('0123456789.,-+eE []{}"', max_size=12).map(str.encode)
)


@settings(max_examples=500, deadline=None)
@given(
    pairs=st.lists(st.tuples(_any_values, _any_times), max_size=40),
    edits=st.dictionaries(st.integers(0, 40), _edited_lines, max_size=4),
    torn=st.sampled_from([b"", b"12.5,17000", b"1,"]),
)
def test_damaged_or_edited_lines_read_as_float_reads_them_skipped_and_counted_as_before(
    pairs: list[tuple[float, float]], edits: dict[int, bytes], torn: bytes
) -> None:
    content = _content(pairs, edits) + torn
    parsed, expected = segments.parse(content), _parsed_by_float(content)
    assert _bits(parsed.series) == _bits(expected.series)
    assert parsed.unreadable == expected.unreadable


def test_a_hand_edited_integer_reads_as_its_float() -> None:
    content = b"cpu,time\n2,1700000000\n-0,1700000001.5\n12.5,1700000002.0\n"
    parsed = segments.parse(content)
    assert _bits(parsed.series) == _bits(
        SampleSeries([2.0, -0.0, 12.5], [1_700_000_000.0, 1_700_000_001.5, 1_700_000_002.0])
    )
    assert parsed.unreadable == 0


@settings(max_examples=50, deadline=None)
@given(
    times=st.lists(st.integers(0, 3_000), max_size=2_500),
    start=_bounds,
    end=_bounds,
)
def test_a_compacted_segment_read_by_its_index_gives_the_range_of_all_its_samples(
    times: list[int], start: float | None, end: float | None
) -> None:
    # Many equal times, so that some fall at the border of two streams.
    series = SampleSeries([float(i) for i in range(len(times))], sorted(BASE + t / 2 for t in times))
    packed = compressed.compact(b"cpu,time\n", series)
    time_range = _range(start, end)
    read = segments.bytes_reader(packed.content)
    text = compressed.read_text(read, len(packed.content), packed.index, day_start(BASE), time_range)
    found = segment_search.read_range(segments.bytes_reader(text), len(text), time_range, in_time_order=True)
    assert found.series == series.within(time_range)
    # Standard tools read the whole file: a run of xz streams that decompress to the sorted CSV.
    whole = lzma.decompress(packed.content)
    assert whole == b"cpu,time\n" + segments.lines_of(series.values, series.taken_at)


def test_an_index_that_does_not_fit_its_compacted_segment_is_not_used() -> None:
    series = SampleSeries([1.0] * 1_500, [BASE + i for i in range(1_500)])
    packed = compressed.compact(b"cpu,time\n", series)
    first_second = TimeRange(BASE, BASE)

    def spans_read(index: bytes, day: float = day_start(BASE)) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []

        def read(offset: int, length: int) -> bytes:
            spans.append((offset, length))
            return packed.content[offset : offset + length]

        text = compressed.read_text(read, len(packed.content), index, day, first_second)
        assert segment_search.read_range(
            segments.bytes_reader(text), len(text), first_second, True
        ).series == [Point(1.0, BASE)]
        return spans

    [(offset, length)] = spans_read(packed.index)
    assert offset == 0 and length < len(packed.content) / 2  # the first stream only
    whole = [(0, len(packed.content))]
    for damaged in (b"", packed.index[:-3], packed.index.replace(b",0\n", b",7\n")):
        assert spans_read(damaged) == whole
    assert spans_read(packed.index, day=day_start(BASE) + DAY) == whole  # another day's
    # An index that fits in form but not in content: the stream read does not begin where it says.
    shifted = packed.index.replace(repr(BASE).encode(), repr(BASE - 1).encode())
    assert spans_read(shifted)[-1] == whole[0]


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["append", "replace last", "rewrite"]), st.lists(_times, min_size=1, max_size=5)
        ),
        max_size=12,
    )
)
def test_rollup_rows_kept_from_a_former_read_are_the_rows_of_the_file_now(
    steps: list[tuple[str, list[float]]],
) -> None:
    cache = rollup_rows.ParsedRollups(rows=50)
    content = rollup_rows.HEADER
    for change, times in steps:
        rows = b"".join(map(rollup_rows.row, rollup(SampleSeries([1.5] * len(times), sorted(times)), 60.0)))
        if change == "replace last" and content.count(b"\n") > 1:
            content = content[: content.rfind(b"\n", 0, len(content) - 1) + 1] + rows
        elif change == "rewrite":
            content = rollup_rows.HEADER + rows
        else:
            content += rows
        assert cache.buckets(Path("minutes/2023-11-14.csv"), content, 60.0) == rollup_rows.parse(
            content, 60.0
        )


@given(lines=st.lists(st.binary(max_size=6_000).map(lambda line: line.replace(b"\n", b"")), max_size=4))
def test_the_last_line_is_found_however_long_the_lines(lines: list[bytes]) -> None:
    content = b"".join(line + b"\n" for line in lines)
    start, last = segments.last_line(segments.bytes_reader(content), len(content))
    assert (start, last) == ((len(content) - len(lines[-1]) - 1, lines[-1]) if lines else (0, b""))


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(_values, _times), max_size=20),
    damage=st.dictionaries(st.integers(0, 20), _damage, max_size=3),
    header=st.booleans(),
    torn=st.sampled_from([b"", b"12.5,17000", b"x" * 300, b"\n" * 3]),
)
def test_healing_a_torn_tail_cuts_back_to_the_last_whole_line_and_finds_its_time(
    tmp_path_factory: pytest.TempPathFactory,
    pairs: list[tuple[float, float]],
    damage: dict[int, bytes],
    header: bool,
    torn: bytes,
) -> None:
    content = _content(pairs, damage)
    content = (content if header else content.removeprefix(b"cpu,time\n")) + torn
    path = tmp_path_factory.mktemp("heal") / "segment.csv"
    path.write_bytes(content)
    end = content.rfind(b"\n") + 1
    lines = content[:end].split(b"\n")[:-1]
    last = lines[-1] if lines else b"cpu,time"
    expected = -math.inf if last == b"cpu,time" else segments.time_of(last)
    fd = os.open(path, os.O_RDWR)
    try:
        assert segments.heal_torn_tail(fd) == (end, expected)
    finally:
        os.close(fd)
    assert path.read_bytes() == content[:end]
