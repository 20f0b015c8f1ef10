"""Thin Falcon resources: parse the request, call a domain service, shape the answer.

The wire format (JSON field names) lives here and, for PROTOCOL.md part 3 (POST/GET /samples, GET /hosts),
in host_resources.py, for part 4 (logout and keys) in access_resources.py: nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import resources as package_files
from typing import Any

import falcon

from perfmon.domain.accounts import Accounts
from perfmon.domain.history import History
from perfmon.domain.model import CPU, Bucket, SampleSeries, Session, TimeRange
from perfmon.entrypoints.http.access_resources import key_in
from perfmon.entrypoints.http.client_address import ClientAddress
from perfmon.entrypoints.http.errors import BadArguments
from perfmon.entrypoints.http.parsing import (
    optional_choice_param,
    optional_float_param,
    parse_sample,
    parse_samples,
    read_json_object,
    require_string,
    required_param,
)


class _AccountCall:
    """The shape of /register and /login: a JSON object in, a {"hash"} of a new session out."""

    def __init__(self, accounts: Accounts, max_body_bytes: int) -> None:
        self._accounts = accounts
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json_object(req, self._max_body_bytes)
        resp.media = {"hash": self._open_session(req, body).token}

    def _open_session(self, req: falcon.Request, body: dict[str, Any]) -> Session:
        raise NotImplementedError


def _credentials(body: dict[str, Any]) -> tuple[str, str]:
    """Part 1's {"user", "passwd"}: both strings (their rules are the domain's)."""
    return require_string(body, "user"), require_string(body, "passwd")


def _host(body: dict[str, Any]) -> str | None:
    """PROTOCOL.md part 3: an optional host the new session belongs to; absent or null: none."""
    host = body.get("host")
    if host is not None and not isinstance(host, str):
        raise BadArguments("host must be a string or null")
    return host


class Registration(_AccountCall):
    """POST /register `{"user", "passwd", "host"?}`: create a user and open its first session (on a host, if
    one is named)."""

    def _open_session(self, req: falcon.Request, body: dict[str, Any]) -> Session:
        name, password = _credentials(body)
        return self._accounts.register(name, password, _host(body))


class Login(_AccountCall):
    """POST /login `{"user", "passwd", "host"?}` or `{"key", "host"?}` (PROTOCOL.md part 4): open a new
    session for a known user, with the password's scope (everything) or the key's (on a host, if one is
    named). Failures are limited per client address, whichever credential was given."""

    def __init__(self, accounts: Accounts, max_body_bytes: int, client_address: ClientAddress) -> None:
        super().__init__(accounts, max_body_bytes)
        self._client_address = client_address

    def _open_session(self, req: falcon.Request, body: dict[str, Any]) -> Session:
        client = self._client_address.of(req)
        if "key" in body:
            return self._accounts.log_in_with_key(key_in(body), client, _host(body))
        name, password = _credentials(body)
        return self._accounts.log_in(name, password, client, _host(body))


class CpuSamples:
    """POST /cpu stores one sample or a batch; GET /cpu reads a session's samples as JSON, buckets or CSV."""

    def __init__(self, history: History, max_body_bytes: int) -> None:
        self._history = history
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json_object(req, self._max_body_bytes)
        token = require_string(body, "hash")
        if "samples" in body:
            batch = parse_samples(body["samples"])
            self._history.record(token, [sample.sample() for sample in batch])
            resp.media = {"stored": len(batch)}
            return
        sample = parse_sample(body)
        session = self._history.record(token, [sample.sample()])
        resp.media = {"payload": {"cpu": sample.cpu, "hash": session.token, "time": sample.taken_at}}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The original client sends `hash`; the original README documents `user_hash`.
        token = required_param(req, "hash", "user_hash")
        time_range = TimeRange(optional_float_param(req, "start_time"), optional_float_param(req, "cur_time"))
        of_session = req.get_param("session")
        step = optional_float_param(req, "step")
        as_csv = optional_choice_param(req, "format", ("json", "csv")) == "csv"
        if step is not None:
            if as_csv:
                raise BadArguments("step and format=csv do not combine")
            buckets = self._history.buckets(token, time_range, step, of_session)
            resp.media = {"payload": [_bucket_document(bucket) for bucket in buckets]}
            return
        samples = self._history.samples(token, time_range, of_session)
        if as_csv:
            resp.content_type = falcon.MEDIA_CSV
            resp.stream = csv_lines(samples)
            return
        resp.media = {
            "payload": [
                {"cpu": cpu, "timestamp": moment}
                for cpu, moment in zip(samples.values, samples.taken_at, strict=True)
            ]
        }


def _bucket_document(bucket: Bucket) -> dict[str, float | int]:
    return {
        "timestamp": bucket.start,
        "cpu": bucket.mean,
        "min": bucket.low,
        "max": bucket.high,
        "count": bucket.count,
    }


CSV_LINES_PER_CHUNK = 4096


def csv_lines(samples: SampleSeries, metric: str = CPU) -> Iterator[bytes]:
    """The samples as `metric,time` CSV (`cpu,time` for GET /cpu) in chunks, so that a large export is
    never one big string. The metric's name is checked ([a-z][a-z0-9_]*): nothing to quote."""
    yield f"{metric},time\n".encode()
    for offset in range(0, len(samples), CSV_LINES_PER_CHUNK):
        cpus = samples.values[offset : offset + CSV_LINES_PER_CHUNK]
        moments = samples.taken_at[offset : offset + CSV_LINES_PER_CHUNK]
        # repr() is the shortest text that reads back as the same float.
        yield "".join(f"{cpu!r},{moment!r}\n" for cpu, moment in zip(cpus, moments, strict=True)).encode()


class Sessions:
    """GET /sessions: every session of the caller's user, newest first, with its `cpu` sample counts and
    its host (PROTOCOL.md part 3; null for a session on none). `session` is what `session=` takes: the
    token for a password session, a public id (`s-...`) for a key's (model.public_session_id)."""

    def __init__(self, history: History) -> None:
        self._history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        overviews = self._history.sessions_of_user(required_param(req, "hash", "user_hash"))
        resp.media = {
            "payload": [
                {
                    "session": overview.reference,
                    "created": overview.session.created_at,
                    "samples": overview.samples.count,
                    "first": overview.samples.first,
                    "last": overview.samples.last,
                    "host": overview.session.host,
                }
                for overview in overviews
            ]
        }


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


class ApiDescription:
    """GET /openapi.json: the OpenAPI document shipped in this package, read once and served as is."""

    def __init__(self) -> None:
        self._document = package_files.files(__package__).joinpath("openapi.json").read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._document
