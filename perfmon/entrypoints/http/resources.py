"""Thin Falcon resources: parse the request, call a domain service, shape the answer.

The wire format (JSON field names) lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable

import falcon

from perfmon.domain.accounts import Accounts
from perfmon.domain.cpu_history import CpuHistory
from perfmon.domain.model import Session, TimeRange
from perfmon.entrypoints.http.parsing import (
    optional_float_param,
    parse_sample,
    read_json_object,
    require_string,
    required_param,
)


def _session_answer(resp: falcon.Response, session: Session) -> None:
    resp.media = {"hash": session.token}


class Registration:
    """POST /register: create a user and open its first session."""

    def __init__(self, accounts: Accounts, max_body_bytes: int) -> None:
        self._accounts = accounts
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json_object(req, self._max_body_bytes)
        name, password = require_string(body, "user"), require_string(body, "passwd")
        _session_answer(resp, self._accounts.register(name, password))


class Login:
    """POST /login: open a new session for a known user."""

    def __init__(self, accounts: Accounts, max_body_bytes: int) -> None:
        self._accounts = accounts
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json_object(req, self._max_body_bytes)
        name, password = require_string(body, "user"), require_string(body, "passwd")
        _session_answer(resp, self._accounts.log_in(name, password))


class CpuSamples:
    """POST /cpu stores a sample; GET /cpu reads a session's samples by time range."""

    def __init__(self, cpu_history: CpuHistory, max_body_bytes: int) -> None:
        self._cpu_history = cpu_history
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json_object(req, self._max_body_bytes)
        token = require_string(body, "hash")
        sample = parse_sample(body)
        session = self._cpu_history.record(token, [sample])
        resp.media = {"payload": {"cpu": sample.cpu, "hash": session.token, "time": sample.taken_at}}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The original client sends `hash`; the original README documents `user_hash`.
        token = required_param(req, "hash", "user_hash")
        time_range = TimeRange(optional_float_param(req, "start_time"), optional_float_param(req, "cur_time"))
        samples = self._cpu_history.samples(token, time_range)
        resp.media = {"payload": [{"cpu": s.cpu, "timestamp": s.taken_at} for s in samples]}


class Health:
    """GET /healthz: the process answers."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Readiness:
    """GET /readyz: the storage can be reached (503 through the error table when it cannot)."""

    def __init__(self, storage_name: str, check_storage: Callable[[], None]) -> None:
        self._storage_name = storage_name
        self._check_storage = check_storage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._check_storage()
        resp.media = {"status": "ok", "storage": self._storage_name}
