"""A registration that fails answers an error only when nothing was kept: the retry then succeeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from perfmon import bootstrap
from tests.servers import threaded_server


@pytest.fixture
def file_settings(tmp_path: Path) -> bootstrap.Settings:
    return bootstrap.Settings(storage="file", data_dir=tmp_path / "data", threads=4)


def _register(url: str) -> requests.Response:
    return requests.post(f"{url}/register", json={"user": "alice", "passwd": "s3cret"}, timeout=10)


def test_register_whose_session_write_fails_answers_503_and_its_retry_succeeds(
    file_settings: bootstrap.Settings,
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
