"""No credential reaches the log: storage errors forced over HTTP, in both storage modes, with every
logger at DEBUG, leave neither a session hash nor a password in any line (tracebacks included); nor
do access keys (PROTOCOL.md part 4) and their SHA-256 digests, through key logins, key management, their
failures and storage errors under them, with the access log on."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

from perfmon.adapters.postgres.engine import database_url
from perfmon.config import Settings
from perfmon.domain.model import key_digest
from tests.postgres_server import delete_session, empty_tables, terminate_backends
from tests.servers import threaded_server

PASSWORD = "pw-Tr0ub4dor-3-never-logged"
DATABASE_PASSWORD = "db-Correct-Horse-never-logged"
LOGGERS = ["", "perfmon", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "waitress"]


@pytest.fixture
def whole_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of every logger, DEBUG up, as an operator who turns everything on would see it."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def _account(url: str) -> tuple[str, str]:
    name = f"user-{uuid.uuid4().hex[:8]}"
    answer = requests.post(f"{url}/register", json={"user": name, "passwd": PASSWORD}, timeout=10)
    assert answer.status_code == 200
    return name, answer.json()["hash"]


def _post(url: str, token: str, **extra: object) -> int:
    body = {"hash": token, "cpu": 12.5, "time": 1_700_000_000.5, **extra}
    return requests.post(f"{url}/cpu", json=body, timeout=30).status_code


def _reads(url: str, name: str, token: str) -> list[int]:
    statuses = [
        requests.get(f"{url}/cpu", params={"hash": token}, timeout=30).status_code,
        requests.get(f"{url}/cpu", params={"hash": token, "step": "60"}, timeout=30).status_code,
        requests.get(f"{url}/cpu", params={"hash": token, "format": "csv"}, timeout=30).status_code,
        requests.get(f"{url}/sessions", params={"hash": token}, timeout=30).status_code,
        requests.post(f"{url}/login", json={"user": name, "passwd": PASSWORD}, timeout=30).status_code,
    ]
    return statuses


def _assert_no_secret(log: pytest.LogCaptureFixture, secrets: list[str]) -> None:
    # The server's records, formatted with their tracebacks; urllib3 is this test's own HTTP client.
    served = [record for record in log.records if not record.name.startswith("urllib3")]
    text = "\n".join(log.handler.format(record) + str(record.__dict__) for record in served)
    assert "Traceback" in text or "storage unavailable" in text  # the errors were logged
    for secret in secrets:
        assert secret not in text, f"{secret[:6]}... is in the log: {_around(text, secret)}"


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 600) : at + 100]


@pytest.fixture
def db_settings(postgres_url: str, postgres_engine: Engine, tmp_path: Path) -> Settings:
    """A db-mode server whose URL carries a password (the tests' server trusts and ignores it)."""
    empty_tables(postgres_engine)
    url = make_url(postgres_url).set(password=DATABASE_PASSWORD).render_as_string(hide_password=False)
    return Settings(storage="db", database_url=url, threads=4, access_log=True)


@pytest.mark.postgres
def test_database_errors_leave_no_session_hash_nor_password_in_the_log(
    db_settings: Settings,
    postgres_url: str,
    postgres_server_url: str,
    whole_log: pytest.LogCaptureFixture,
) -> None:
    # The test's own statements name the token too: their parameters stay out of the log as well.
    admin = create_engine(
        database_url(postgres_url), poolclass=NullPool, isolation_level="AUTOCOMMIT", hide_parameters=True
    )
    try:
        with threaded_server(db_settings) as url:
            name, token = _account(url)
            assert _post(url, token) == 200
            login = requests.post(f"{url}/login", json={"user": name, "passwd": PASSWORD}, timeout=10)
            tokens = [token, login.json()["hash"]]
            statuses: list[int] = []
            with admin.connect() as connection:
                # Tables gone from under the server: every statement fails with the SQL in its error.
                for table in ("samples", "rollups", "series", "sessions", "users"):
                    connection.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_away")
                    statuses += [_post(url, token), *_reads(url, name, token)]
                    connection.exec_driver_sql(f"ALTER TABLE {table}_away RENAME TO {table}")
                # The session deleted behind the server's back (it stays in its cache): the foreign keys
                # refuse its series and their rollups, and the driver's DETAIL line repeats the token.
                delete_session(connection, token)
                statuses += [_post(url, token), _post(url, token, samples=[{"cpu": 1, "time": 2}])]
            # Connections killed under the pool.
            terminate_backends(postgres_server_url, make_url(postgres_url).database or "")
            statuses += _reads(url, name, tokens[1])
    finally:
        admin.dispose()
    # The errors did happen, and were logged.
    assert {500, 503} & set(statuses), statuses
    assert any(record.levelno >= logging.WARNING for record in whole_log.records)
    _assert_no_secret(whole_log, [*tokens, PASSWORD, DATABASE_PASSWORD])


def test_file_storage_errors_leave_no_session_hash_nor_password_in_the_log(
    tmp_path: Path, whole_log: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(storage="file", data_dir=data_dir, threads=4, access_log=True)
    with threaded_server(settings) as url:
        name, token = _account(url)
        assert _post(url, token) == 200
        statuses: list[int] = []
        # Each storage folder replaced by a file in turn: every path under it fails.
        for folder in ("sessions", "users"):
            moved = data_dir / f"{folder}-away"
            (data_dir / folder).rename(moved)
            (data_dir / folder).write_text("not a folder")
            statuses += [_post(url, token), *_reads(url, name, token)]
            (data_dir / folder).unlink()
            moved.rename(data_dir / folder)
        # The session's files deleted behind the server's back.
        for path in (data_dir / "sessions").glob(f"{token}*"):
            shutil.move(path, tmp_path / path.name)
        statuses += [_post(url, token), *_reads(url, name, token)]
    assert {500, 503} & set(statuses), statuses
    assert any(record.levelno >= logging.WARNING for record in whole_log.records)
    _assert_no_secret(whole_log, [token, PASSWORD])


def _key_calls(url: str, owner: str, name: str) -> tuple[list[str], list[int]]:
    """Key management, key logins and their failures, including a client's mistakes that put a key where
    none belongs (the path, the query): the keys, digests and hashes involved, and the statuses."""
    made = [
        requests.post(f"{url}/keys", json={"hash": owner, "scope": scope, "name": f"{scope} key"}, timeout=10)
        for scope in ("ingest", "read")
    ]
    ingest, read = (answer.json() for answer in made)
    unknown = "pmk_" + uuid.uuid4().hex + "Qx-_" + "a" * 7  # of a key's form, but no key
    keys = [ingest["key"], read["key"], unknown]
    agent = requests.post(f"{url}/login", json={"key": ingest["key"], "host": "web-1"}, timeout=10)
    display = requests.post(f"{url}/login", json={"key": read["key"]}, timeout=10)
    hashes = [agent.json()["hash"], display.json()["hash"]]
    answers = [*made, agent, display]
    answers += [
        requests.post(f"{url}/login", json={"key": unknown}, timeout=10),
        requests.post(
            f"{url}/login", json={"key": ingest["key"], "user": name, "passwd": PASSWORD}, timeout=10
        ),
        requests.post(f"{url}/login", json={"key": ingest["key"], "host": "\n"}, timeout=10),
        requests.post(f"{url}/login", json={"key": [ingest["key"]]}, timeout=10),
        requests.post(f"{url}/login?key={ingest['key']}", json={}, timeout=10),
        requests.get(f"{url}/keys", params={"hash": owner}, timeout=10),
        requests.get(f"{url}/keys", params={"hash": hashes[0]}, timeout=10),
        requests.get(f"{url}/cpu", params={"hash": hashes[0]}, timeout=10),
        requests.post(f"{url}/cpu", json={"hash": hashes[1], "cpu": 1, "time": 2}, timeout=10),
        requests.post(f"{url}/cpu", json={"hash": hashes[0], "cpu": 1, "time": 2}, timeout=10),
        # A key where its id belongs, or in a path of its own.
        requests.delete(f"{url}/keys/{ingest['key']}", params={"hash": owner}, timeout=10),
        requests.get(f"{url}/keys/{read['key']}", timeout=10),
        requests.get(f"{url}/{unknown}", timeout=10),
        requests.delete(f"{url}/keys/{read['id']}", params={"hash": owner}, timeout=10),
        requests.post(f"{url}/login", json={"key": read["key"]}, timeout=10),
        requests.get(f"{url}/hosts", params={"hash": hashes[1]}, timeout=10),
        requests.post(f"{url}/logout", json={"hash": hashes[0]}, timeout=10),
    ]
    secrets = [*keys, *(key_digest(key) for key in keys), *hashes]
    return secrets, [answer.status_code for answer in answers]


@pytest.fixture
def logged_settings(server_settings: Settings) -> Settings:
    """The settings of server_url's server, with the access log on."""
    return dataclasses.replace(server_settings, access_log=True)


def test_keys_and_their_digests_never_reach_the_log(
    logged_settings: Settings, whole_log: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    with threaded_server(logged_settings) as url:
        name, owner = _account(url)
        secrets, statuses = _key_calls(url, owner, name)
        assert {200, 400, 401, 403, 404, 405} <= set(statuses), statuses
        # The same calls again, with the keys' storage failing under them.
        with _keys_unreachable(logged_settings, request):
            more_secrets, failed = _key_calls_under_failure(url, owner, secrets[0])
    assert {500, 503} & set(failed), failed
    _assert_no_secret(whole_log, [*secrets, *more_secrets, owner, PASSWORD])


def _key_calls_under_failure(url: str, owner: str, key: str) -> tuple[list[str], list[int]]:
    answers = [
        requests.post(f"{url}/keys", json={"hash": owner, "scope": "read", "name": "n"}, timeout=30),
        requests.get(f"{url}/keys", params={"hash": owner}, timeout=30),
        requests.post(f"{url}/login", json={"key": key}, timeout=30),
        requests.delete(f"{url}/keys/0123456789abcdef", params={"hash": owner}, timeout=30),
    ]
    return [], [answer.status_code for answer in answers]


@contextlib.contextmanager
def _keys_unreachable(settings: Settings, request: pytest.FixtureRequest) -> Iterator[None]:
    """The keys' storage gone from under the server: the table renamed, or the folder replaced by a file."""
    if settings.storage == "db":
        engine: Engine = request.getfixturevalue("postgres_engine")
        with engine.connect() as connection:
            connection.exec_driver_sql("ALTER TABLE access_keys RENAME TO access_keys_away")
            connection.commit()
        try:
            yield
        finally:
            with engine.connect() as connection:
                connection.exec_driver_sql("ALTER TABLE access_keys_away RENAME TO access_keys")
                connection.commit()
        return
    keys = (settings.data_dir or Path()) / "keys"
    keys.rename(keys.with_name("keys-away"))
    keys.write_text("not a folder")
    try:
        yield
    finally:
        keys.unlink()
        keys.with_name("keys-away").rename(keys)
