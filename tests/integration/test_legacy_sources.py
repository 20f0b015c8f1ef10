"""The readers of the original's two formats: what they yield, and what they count as bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfmon.adapters.legacy.database import LegacyDatabaseSource, legacy_engine
from perfmon.adapters.legacy.files import LegacyFileSource, split_credentials
from perfmon.domain.legacy_records import LegacySample, LegacySource
from tests.legacy_formats import OriginalUser, original_database

HASH_1 = "2948f6fa-d0df-43b8-8183-e014f4c06dbc"
HASH_2 = "7d3c6a0e-5b1f-4c2a-9e8d-1f2a3b4c5d6e"


def read_all(source: LegacySource) -> list[tuple[str, str, list[tuple[str, list[LegacySample]]]]]:
    """Everything the source yields, consumed in the order the import consumes it."""
    return [
        (user.name, user.password, [(s.token, list(s.samples)) for s in user.sessions])
        for user in source.users()
    ]


@pytest.mark.parametrize(
    ("line", "stem", "credentials"),
    [
        ("alice,pw", "alice", ("alice", "pw")),
        ("alice, pw ", "alice", ("alice", "pw")),
        ("alice,pass,word", "alice", ("alice", "pass,word")),
        ("smith, john,pw", "smith, john", ("smith, john", "pw")),
        ("alice,pw", "renamed by hand", ("alice", "pw")),
        (",pw", "", ("", "pw")),
        ("no comma", "no comma", None),
    ],
)
def test_first_line_of_a_user_file_splits_on_the_comma_after_the_name(
    line: str, stem: str, credentials: tuple[str, str] | None
) -> None:
    assert split_credentials(line, stem) == credentials


def test_file_reader_tolerates_what_hand_edited_files_hold(tmp_path: Path) -> None:
    (tmp_path / "users").mkdir()
    (tmp_path / "users_data").mkdir()
    user_file = f"alice,pw\r\n{HASH_1}\r\n\r\n{HASH_1}\r\n{HASH_2}\r\n../outside\r\n"
    (tmp_path / "users" / "alice.txt").write_bytes(user_file.encode())
    # No header, a blank line, and a line that is not two numbers.
    (tmp_path / "users_data" / f"{HASH_1}.csv").write_text("1.5,10\n\n2,x\n 3 , 11.25 \n")
    (tmp_path / "outside.csv").write_text("cpu,time\n99,99\n")
    (tmp_path / "users" / "notes.md").write_text("not a user")
    source = LegacyFileSource(tmp_path)

    users = read_all(source)

    assert users == [
        (
            "alice",
            "pw",
            [
                (HASH_1, [LegacySample(1.5, 10.0), LegacySample(3.0, 11.25)]),
                (HASH_2, []),  # no samples file: a session without samples
                ("../outside", []),  # never read from outside users_data
            ],
        )
    ]
    assert source.bad_lines == 1


def test_file_reader_counts_unreadable_user_files_as_one_bad_line_each(tmp_path: Path) -> None:
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "latin1.txt").write_bytes("latin1,caf\xe9\n".encode("latin-1"))
    (tmp_path / "users" / "nocomma.txt").write_text(f"nocomma\n{HASH_1}\n")
    (tmp_path / "users" / "empty.txt").write_text("")
    source = LegacyFileSource(tmp_path)

    assert read_all(source) == []
    assert source.bad_lines == 3


@pytest.mark.postgres
def test_database_reader_keeps_each_sessions_rows_in_insertion_order(postgres_server_url: str) -> None:
    users = [
        OriginalUser("alice", "pw", {HASH_1: [(5.0, 30.0), (6.0, 10.0), (7.0, 20.0)], HASH_2: []}),
        OriginalUser("nobody logged in", "pw"),
    ]
    with original_database(postgres_server_url, users) as url:
        engine = legacy_engine(url)
        try:
            source = LegacyDatabaseSource(engine)
            source.check()
            read = read_all(source)
        finally:
            engine.dispose()

    samples = [LegacySample(5.0, 30.0), LegacySample(6.0, 10.0), LegacySample(7.0, 20.0)]
    assert read == [("alice", "pw", [(HASH_1, samples), (HASH_2, [])]), ("nobody logged in", "pw", [])]
    assert source.bad_lines == 0


@pytest.mark.postgres
def test_database_reader_lets_a_skipped_user_pass_unread(postgres_server_url: str) -> None:
    users = [
        OriginalUser(name, "pw", {token: [(1.0, 2.0)]}) for name, token in [("a", HASH_1), ("b", HASH_2)]
    ]
    with original_database(postgres_server_url, users) as url:
        engine = legacy_engine(url)
        try:
            # As the import does for a user it refuses: its sessions are never iterated.
            names = [user.name for user in LegacyDatabaseSource(engine).users()]
        finally:
            engine.dispose()

    assert names == ["a", "b"]
