"""What the agent tells its user: the status line on a terminal, log lines otherwise."""

from __future__ import annotations

import io
import logging

import pytest

from perfmon.agent.model import SpoolCounts
from perfmon.agent.status import StatusReport


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_status_line_shows_sent_spooled_dropped_and_the_last_error() -> None:
    report = StatusReport()
    report.delivered(7)
    report.problem("no answer from http://perfmon:8080: Connection refused")
    report.refresh(SpoolCounts(pending=3, dropped=2, quarantined=0))

    assert report.line() == (
        "sent 7 | spooled 3 | dropped 2 | last error: no answer from http://perfmon:8080: Connection refused"
    )


def test_on_a_terminal_the_line_is_redrawn_in_place_and_ended_at_finish() -> None:
    terminal = io.StringIO()
    clock = Clock()
    report = StatusReport(terminal, clock)
    for pending in range(3):
        clock.now += 1
        report.refresh(SpoolCounts(pending, 0, 0))
    report.finish(SpoolCounts(0, 0, 0))

    drawn = terminal.getvalue()
    assert drawn.count("\r") == 3
    assert drawn.endswith("spooled 2 | dropped 0 | last error: none\n")


def test_an_outage_is_logged_once_and_so_is_the_recovery(caplog: pytest.LogCaptureFixture) -> None:
    report = StatusReport()
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            report.problem("no answer: Connection refused")
        report.delivered(1)
        report.delivered(1)

    assert [record.getMessage() for record in caplog.records] == [
        "no answer: Connection refused; samples are kept in the spool",
        "server reachable again: sending what was spooled",
    ]


def test_drops_are_logged_when_they_start_and_then_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    report = StatusReport(clock=clock)
    with caplog.at_level(logging.WARNING):
        for dropped in range(1, 101):
            clock.now += 1
            report.refresh(SpoolCounts(10, dropped, 0))

    assert [record.getMessage() for record in caplog.records] == [
        "spool full: dropping the oldest samples (1 dropped so far)",
        "spool full: dropping the oldest samples (61 dropped so far)",
    ]


def test_an_error_stays_the_last_error_until_another_one_and_an_outage_ends_with_a_delivery() -> None:
    report = StatusReport()
    report.problem("no answer: Connection refused")
    report.delivered(1)
    assert report.line().endswith("last error: none")

    report.event(logging.ERROR, "server answered 400: Bad arguments; 1 sample(s) set aside in quarantine.csv")
    report.delivered(1)
    report.finish(SpoolCounts(0, 0, 1))

    assert report.line().endswith(
        "last error: server answered 400: Bad arguments; 1 sample(s) set aside in quarantine.csv"
    )
