"""The model's own rules."""

from __future__ import annotations

import math

import pytest

from perfmon.domain.errors import InvalidInput
from perfmon.domain.model import CpuSample, Password, TimeRange, parse_session_token


@pytest.mark.parametrize(
    ("cpu", "taken_at"),
    [
        (-0.1, 1.0),
        (math.nan, 1.0),
        (math.inf, 1.0),
        (1.0, -1.0),
        (1.0, 1e11),
        (1.0, math.nan),
        (1.0, -math.inf),
    ],
)
def test_cpu_sample_refuses_values_outside_the_protocol(cpu: float, taken_at: float) -> None:
    with pytest.raises(InvalidInput):
        CpuSample(cpu, taken_at)


def test_cpu_sample_accepts_the_edges() -> None:
    assert CpuSample(0.0, 0.0).cpu == 0.0
    assert CpuSample(1e300, 1e11 - 0.001).taken_at == 1e11 - 0.001


def test_time_range_refuses_start_after_end() -> None:
    with pytest.raises(InvalidInput, match="start_time"):
        TimeRange(2.0, 1.0)


def test_time_range_is_inclusive_and_open_ended() -> None:
    assert TimeRange(1.0, 2.0).contains(1.0) and TimeRange(1.0, 2.0).contains(2.0)
    assert not TimeRange(1.0, 2.0).contains(2.0000001)
    assert TimeRange(start=5.0).contains(1e10) and TimeRange(end=5.0).contains(0.0)


def test_session_token_is_canonicalised_or_refused() -> None:
    assert parse_session_token("3F1C1B7E8A1D4C559A7E0D9F0B6F5A21") == "3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a21"
    for text in ["", "not-a-uuid", "../x", "3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a2"]:
        with pytest.raises(InvalidInput):
            parse_session_token(text)


def test_password_repr_never_shows_the_secret() -> None:
    assert "hunter2" not in repr(Password("hunter2"))


def test_a_cpu_reading_is_a_sample_of_the_cpu_series_equal_to_a_checked_one() -> None:
    from perfmon.domain.model import Sample

    assert CpuSample(12.5, 1_700_000_000.25).sample() == Sample(1_700_000_000.25, {"cpu": 12.5})
