"""`perfmon agent` as its user runs it, against a real server on each storage."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from perfmon.agent import command


def _agent_arguments(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    return parser.parse_args(["agent", *flags])


def test_a_refused_log_in_stops_the_agent_with_the_refusal_in_its_summary(
    server_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    arguments = _agent_arguments(
        "--server", server_url, "--user", "nobody", "--spool-dir", str(tmp_path / "spool")
    )

    with caplog.at_level(logging.INFO):
        status = command.run(arguments, {command.PASSWORD_VARIABLE: "not-a-password-here"})

    assert status == 1
    [summary] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("agent stopped")]
    assert "last error: log in refused: Wrong credentials or user is not registered" in summary
    assert "check the user and password, or add --register" in summary  # run without --register
    assert "not-a-password-here" not in caplog.text
