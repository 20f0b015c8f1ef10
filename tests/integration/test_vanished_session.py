"""A session deleted behind the server's back, between its lookup and the write of its samples.

The server still knows the session (the storages cache sessions, which are never deleted), so the
domain's check passes and the storage itself finds the session gone: a 401 that sends the client to log
in again, in every storage mode, rather than a 503 that it would retry for ever or a 500.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from tests.integration.api_calls import open_account
from tests.postgres_server import delete_session

NOT_AUTHORIZED = {"reason": "Not authorized user try to post data, please login"}


def _post(url: str, body: dict[str, object]) -> requests.Response:
    return requests.post(f"{url}/cpu", json=body, timeout=10)


def _delete_session(request: pytest.FixtureRequest, storage_kind: str, tmp_path: Path, token: str) -> None:
    if storage_kind == "db":
        engine: Engine = request.getfixturevalue("postgres_engine")
        with engine.begin() as connection:
            delete_session(connection, token)
        return
    sessions = tmp_path / "data" / "sessions"
    (sessions / f"{token}.json").unlink()
    shutil.rmtree(sessions / token)


def test_a_post_to_a_session_deleted_behind_the_servers_back_is_401_and_a_new_login_works(
    server_url: str, storage_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name, token = open_account(server_url)
    assert _post(server_url, {"hash": token, "cpu": 1.0, "time": 1.0}).status_code == 200
    _delete_session(request, storage_kind, tmp_path, token)
    one = _post(server_url, {"hash": token, "cpu": 2.0, "time": 2.0})
    batch = _post(server_url, {"hash": token, "samples": [{"cpu": 3.0, "time": 3.0}] * 3})
    assert [(one.status_code, one.json()), (batch.status_code, batch.json())] == [(401, NOT_AUTHORIZED)] * 2
    login = requests.post(f"{server_url}/login", json={"user": name, "passwd": "pw"}, timeout=10)
    again = login.json()["hash"]
    assert _post(server_url, {"hash": again, "cpu": 4.0, "time": 4.0}).status_code == 200
    read = requests.get(f"{server_url}/cpu", params={"hash": again}, timeout=10)
    assert read.json() == {"payload": [{"cpu": 4.0, "timestamp": 4.0}]}


@pytest.mark.parametrize("storage_kind", ["file"])
def test_a_post_while_the_data_dir_is_gone_is_503_not_401(server_url: str, tmp_path: Path) -> None:
    _, token = open_account(server_url)
    assert _post(server_url, {"hash": token, "cpu": 1.0, "time": 1.0}).status_code == 200
    # An unmounted volume: every file is missing, which is an outage, not a session that is gone.
    shutil.move(tmp_path / "data", tmp_path / "unmounted")
    try:
        answer = _post(server_url, {"hash": token, "cpu": 2.0, "time": 2.0})
        assert (answer.status_code, answer.json()["reason"]) == (503, "Storage unavailable, retry later")
    finally:
        shutil.move(tmp_path / "unmounted", tmp_path / "data")
    assert _post(server_url, {"hash": token, "cpu": 3.0, "time": 3.0}).status_code == 200
