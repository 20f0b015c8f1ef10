"""A registration that fails answers an error only when nothing was kept: the retry then succeeds."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import requests

from perfmon.adapters.filesystem import FileStorage
from perfmon.adapters.filesystem.layout import user_key
from perfmon.config import Settings
from perfmon.domain.model import Session, User, Username
from tests.servers import threaded_server


@pytest.fixture
def file_settings(tmp_path: Path) -> Settings:
    return Settings(storage="file", data_dir=tmp_path / "data", threads=4)


def _register(url: str) -> requests.Response:
    return requests.post(f"{url}/register", json={"user": "alice", "passwd": "s3cret"}, timeout=10)


def test_register_whose_session_write_fails_answers_503_and_its_retry_succeeds(
    file_settings: Settings,
) -> None:
    sessions = file_settings.data_dir / "sessions"
    with threaded_server(file_settings) as url:
        # A real fault of the disk under the user record's feet: the sessions folder is a regular file,
        # so creating the first session's files fails (as root, permissions would not stop the write).
        shutil.rmtree(sessions)
        sessions.write_bytes(b"")
        failed = _register(url)
        assert failed.status_code == 503, failed.text
        assert failed.json() == {"reason": "Storage unavailable, retry later"}
        sessions.unlink()
        sessions.mkdir(mode=0o700)
        retried = _register(url)
        assert retried.status_code == 200, retried.text
        login = requests.post(f"{url}/login", json={"user": "alice", "passwd": "s3cret"}, timeout=10)
        assert login.status_code == 200, login.text


def test_a_session_whose_record_was_never_written_does_not_keep_the_user(tmp_path: Path) -> None:
    """The last step of starting a session (its record) failed: the token is in the user's list, its
    folder exists, but there is no session. Taking the user back must not stop at that token."""
    storage = FileStorage(tmp_path / "data", fsync=False)
    name = Username("alice")
    storage.users.add(User(name, "hash"))
    token = str(uuid.uuid4())
    (tmp_path / "data" / "sessions" / token).mkdir()
    with open(tmp_path / "data" / "users" / f"{user_key(name)}.sessions", "a") as listed:
        listed.write(f"{token}\n")

    storage.users.remove_unused(name)

    assert storage.users.get(name) is None
    storage.users.add(User(name, "hash"))  # the retry of the registration can add the user again


def test_a_session_with_a_record_keeps_the_user(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "data", fsync=False)
    name = Username("alice")
    storage.users.add(User(name, "hash"))
    storage.sessions.add(Session(str(uuid.uuid4()), name, created_at=1.0))

    storage.users.remove_unused(name)

    assert storage.users.get(name) == User(name, "hash")
