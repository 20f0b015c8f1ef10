"""A key made over HTTP is nowhere in the storage in clear (PROTOCOL.md part 4: the server keeps only a
hash of it), in either storage mode: every file of the data dir, every row of every table."""

from __future__ import annotations

from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from perfmon.adapters.postgres.tables import metadata
from perfmon.config import Settings
from tests.integration.test_http_access import TIMEOUT, key_session, make_key


def _stored_text(settings: Settings) -> str:
    """Everything the storage holds, as one text: each file's bytes, or each table's rows."""
    if settings.storage == "file":
        assert settings.data_dir is not None
        files = [path for path in Path(settings.data_dir).rglob("*") if path.is_file()]
        return "\n".join(path.read_bytes().decode("latin-1") for path in files)
    engine = create_engine(settings.database_url or "")
    try:
        with engine.connect() as connection:
            return "\n".join(
                str(row[0])
                for table in metadata.sorted_tables
                for row in connection.execute(text(f'SELECT t::text FROM "{table.name}" t'))  # noqa: S608 - our tables' names
            )
    finally:
        engine.dispose()


def test_a_key_is_kept_only_as_its_hash(server_url: str, server_settings: Settings) -> None:
    password_token = requests.post(
        f"{server_url}/register", json={"user": "alice", "passwd": "pw"}, timeout=TIMEOUT
    ).json()["hash"]
    made = make_key(server_url, password_token, "ingest", "web-1 agent")
    agent = key_session(server_url, made["key"], host="web-1")
    posted = requests.post(
        f"{server_url}/samples", json={"hash": agent, "time": 100.0, "metrics": {"cpu": 1.0}}, timeout=TIMEOUT
    )
    assert posted.status_code == 200
    stored = _stored_text(server_settings)
    assert made["id"] in stored and "web-1 agent" in stored  # the key's record is there...
    assert made["key"] not in stored  # ...but never the key,
    assert made["key"][len("pmk_") :] not in stored  # nor its random part alone
