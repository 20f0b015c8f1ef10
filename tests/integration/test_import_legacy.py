"""`perfmon import-legacy` end to end: the original's data in, a real server answering its old clients."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from perfmon.config import Settings
from perfmon.entrypoints.cli import main
from tests.legacy_formats import OriginalUser, insert_session_rows, original_database, write_original_files
from tests.postgres_server import empty_tables
from tests.servers import threaded_server

ALICE_1 = "2948f6fa-d0df-43b8-8183-e014f4c06dbc"
ALICE_2 = "7d3c6a0e-5b1f-4c2a-9e8d-1f2a3b4c5d6e"
# A uuid4().hex rather than a str(uuid4()): clients holding either spelling keep working.
NASTY_HEX = "0f1e2d3c4b5a49788796a5b4c3d2e1f0"
BOB_1 = "c0ffee00-1234-4abc-8def-0123456789ab"
NASTY_NAME = "O'Brien; DROP TABLE users;-- Зоя, jr"

ALICE_SAMPLES = [(12.5, 1649596019.895147), (0.0, 1649596020.0), (100.0, 1649596021.25)]
NASTY_VALID = [(7.5, 1649600000.0), (3.25, 1649600003.5)]
# Numbers that perfmon refuses: a negative cpu, a NaN, a time in the year 33658.
NASTY_OUT_OF_RANGE = [(-5.0, 1649600001.0), (float("nan"), 1649600002.0), (5.0, 1e12)]


def original_users(with_file_only_flaws: bool) -> list[OriginalUser]:
    """Three good users (one with a nasty name), and two whose names perfmon refuses."""
    bob_sessions: dict[str, list[tuple[float, float]]] = {BOB_1: [(42.0, 1649700000.0)]}
    if with_file_only_flaws:  # the original's uuid column cannot hold a hash that is no UUID
        bob_sessions["not-a-uuid"] = []
    return [
        OriginalUser("alice", "s3cret, with a comma", {ALICE_1: ALICE_SAMPLES, ALICE_2: []}),
        OriginalUser(
            NASTY_NAME, "p@ss wörd", {NASTY_HEX: [*NASTY_VALID[:1], *NASTY_OUT_OF_RANGE, *NASTY_VALID[1:]]}
        ),
        OriginalUser("bob", "hunter2", bob_sessions, separator=", "),
        OriginalUser("x" * 129, "too long a name"),
        OriginalUser("", "no name at all"),
    ]


PASSWORDS = ["s3cret, with a comma", "p@ss wörd", "hunter2", "too long a name", "no name at all"]


def run_import(*flags: str) -> subprocess.CompletedProcess[str]:
    """`python -m perfmon import-legacy` with DEBUG logs, so that every log line is checked for secrets."""
    result = subprocess.run(
        [sys.executable, "-m", "perfmon", "import-legacy", "--log-level", "DEBUG", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for password in PASSWORDS:
        assert password not in result.stdout + result.stderr
    return result


def counts(summary: str) -> dict[str, int]:
    return {label: int(value) for label, value in (line.rsplit(": ", 1) for line in summary.splitlines())}


def expected(bad_lines: int, first_run: bool = True) -> dict[str, int]:
    return {
        "users imported": 3 if first_run else 0,
        "users skipped": 0 if first_run else 3,
        "sessions imported": 4 if first_run else 0,
        "sessions skipped": 0 if first_run else 4,
        "samples imported": 6 if first_run else 0,
        "bad lines": bad_lines,
    }


def assert_old_clients_are_served(settings: Settings) -> None:
    """The old passwords log in, and the old hashes read exactly the old samples, no more."""
    with threaded_server(settings) as url:
        for name, password in [("alice", PASSWORDS[0]), (NASTY_NAME, PASSWORDS[1]), ("bob", PASSWORDS[2])]:
            login = requests.post(f"{url}/login", json={"user": name, "passwd": password}, timeout=10)
            assert login.status_code == 200, name
        wrong = requests.post(f"{url}/login", json={"user": "alice", "passwd": "s3cret"}, timeout=10)
        assert wrong.status_code == 401
        for token, samples in [(ALICE_1, ALICE_SAMPLES), (ALICE_2, []), (NASTY_HEX, NASTY_VALID)]:
            read = requests.get(f"{url}/cpu", params={"hash": token}, timeout=10)
            assert read.status_code == 200
            assert read.json()["payload"] == [{"cpu": cpu, "timestamp": time} for cpu, time in samples]


def test_import_from_the_original_files_serves_the_old_clients(tmp_path: Path) -> None:
    legacy = write_original_files(tmp_path / "legacy", original_users(with_file_only_flaws=True))
    with (legacy / "users_data" / f"{NASTY_HEX}.csv").open("a") as samples:
        samples.write("abc,def\n1,2,3\n")  # two lines that are no samples at all
    flags = ["--from-dir", str(legacy), "--storage", "file", "--data-dir", str(tmp_path / "data")]

    first = run_import(*flags)
    second = run_import(*flags)

    # Bad: 3 numbers out of range + 2 unparseable lines + 1 hash that is no UUID + 2 refused names.
    assert counts(first.stdout) == expected(bad_lines=8)
    # The samples of sessions already there are not read again: only the hash and the names are bad.
    assert counts(second.stdout) == expected(bad_lines=3, first_run=False)
    assert_old_clients_are_served(Settings(storage="file", data_dir=tmp_path / "data"))


@pytest.mark.postgres
def test_import_from_the_original_database_serves_the_old_clients(
    postgres_server_url: str, postgres_url: str, postgres_engine: Engine
) -> None:
    empty_tables(postgres_engine)
    with original_database(postgres_server_url, original_users(with_file_only_flaws=False)) as legacy_url:
        insert_session_rows(
            legacy_url,
            [
                {"user_id": 2, "token": NASTY_HEX, "cpu": 9.0, "time": None},  # a cpu without a time
                {"user_id": 999, "token": BOB_1, "cpu": 1.0, "time": 2.0},  # a row of no user
            ],
        )
        flags = ["--from-db", legacy_url, "--storage", "db", "--database-url", postgres_url]

        first = run_import(*flags)
        second = run_import(*flags)

    # Bad: 3 numbers out of range + 1 row without a time + 1 row of no user + 2 refused names.
    assert counts(first.stdout) == expected(bad_lines=7)
    assert counts(second.stdout) == expected(bad_lines=3, first_run=False)
    assert_old_clients_are_served(Settings(storage="db", database_url=postgres_url))


def test_a_folder_that_is_not_the_originals_fails_with_1_and_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    with caplog.at_level(logging.ERROR):
        status = main(["import-legacy", "--from-dir", str(tmp_path / "nothing"), "--data-dir", str(data_dir)])

    assert status == 1
    assert "not the original's file storage" in caplog.text
    assert not data_dir.exists()


@pytest.mark.parametrize(
    "source",
    [[], ["--from-dir", "a", "--from-db", "postgresql://postgres@127.0.0.1/a"]],
    ids=["none", "both"],
)
def test_import_needs_exactly_one_source(source: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["import-legacy", *source])

    assert exit_.value.code == 2


def test_a_database_that_does_not_answer_fails_with_1(tmp_path: Path) -> None:
    status = main(
        ["import-legacy", "--from-db", "postgresql://postgres@127.0.0.1:1/gone", "--data-dir", str(tmp_path)]
    )

    assert status == 1


@pytest.mark.postgres
def test_a_database_that_is_not_the_originals_fails_with_1(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # perfmon's own database has tables called users and sessions too, with other columns.
    with caplog.at_level(logging.ERROR):
        status = main(["import-legacy", "--from-db", postgres_url, "--data-dir", str(tmp_path / "data")])

    assert status == 1
    assert "cannot read the legacy database" in caplog.text
    assert not (tmp_path / "data").exists()
