"""Recording and reading samples over in-memory adapters."""

from __future__ import annotations

import pytest

from perfmon.domain.accounts import Accounts
from perfmon.domain.errors import InvalidInput, UnknownSession
from perfmon.domain.history import History
from perfmon.domain.model import EVERYTHING, Point, Sample, TimeRange


def _cpu(value: float, moment: float) -> Sample:
    return Sample(moment, {"cpu": value})


def test_recorded_samples_are_read_back_oldest_first(accounts: Accounts, history: History) -> None:
    token = accounts.register("alice", "pw").token
    history.record(token, [_cpu(3.0, 30.0)])
    history.record(token, [_cpu(1.0, 10.0)])
    assert history.samples(token, EVERYTHING) == [Point(1.0, 10.0), Point(3.0, 30.0)]


def test_samples_are_filtered_by_inclusive_time_range(accounts: Accounts, history: History) -> None:
    token = accounts.register("alice", "pw").token
    history.record(token, [_cpu(float(t), float(t)) for t in range(5)])
    assert [s.taken_at for s in history.samples(token, TimeRange(1.0, 3.0))] == [1.0, 2.0, 3.0]


def test_uppercase_token_names_the_same_session(accounts: Accounts, history: History) -> None:
    token = accounts.register("alice", "pw").token
    history.record(token.upper(), [_cpu(1.0, 1.0)])
    assert history.samples(token, EVERYTHING) == [Point(1.0, 1.0)]


def test_unknown_session_raises_unknown_session(history: History) -> None:
    with pytest.raises(UnknownSession):
        history.record("3f1c1b7e-8a1d-4c55-9a7e-0d9f0b6f5a21", [_cpu(1.0, 1.0)])


def test_token_that_is_not_a_uuid_is_invalid_input(history: History) -> None:
    with pytest.raises(InvalidInput):
        history.samples("../../etc/passwd", EVERYTHING)


def test_sessions_keep_their_own_samples(accounts: Accounts, history: History) -> None:
    first = accounts.register("alice", "pw").token
    second = accounts.log_in("alice", "pw", "192.0.2.1").token
    history.record(first, [_cpu(1.0, 1.0)])
    assert history.samples(second, EVERYTHING) == []
