"""The perfmon HTTP API as the agent calls it, over the standard library's urllib, every call with a timeout.

Answers become return values or the errors of `ports.py`; the wire format lives only in this module."""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from perfmon.agent.model import Sample
from perfmon.agent.ports import (
    AlreadyRegistered,
    CredentialsRefused,
    Forbidden,
    KeyRefused,
    PerfmonServer,
    Rejected,
    ServerUnavailable,
    SessionExpired,
    StoredValue,
)

ALREADY_REGISTERED = "User is already registered"
_SAMPLE_INDEX = re.compile(r"samples\[(\d+)\]")
MAX_METRICS_PER_READ = 16  # PROTOCOL.md part 3: GET /samples takes 1..16 metric names


class ServerClient(PerfmonServer):
    """One perfmon server, one host, and the credentials to log in with: a user's password, or a key
    (with_key). They are kept to log in again when a session expires, and never shown (no repr of them)."""

    def __init__(self, base_url: str, user: str, password: str, host: str, timeout: float = 5.0) -> None:
        """A client logging in as the user with the password; ValueError for a base URL that is not
        http(s)."""
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the server must be an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.user: str | None = user
        self.host = host
        self._timeout = timeout
        # The body of POST /login and POST /register, as PROTOCOL.md parts 1 and 3 name its fields.
        self._credentials: dict[str, str] = {"user": user, "passwd": password, "host": host}

    @classmethod
    def with_key(cls, base_url: str, key: str, host: str, timeout: float = 5.0) -> ServerClient:
        """A client logging in with a key, `POST /login {"key", "host"}` (PROTOCOL.md part 4): the server
        knows the key's user, so `user` is None; ValueError for a base URL that is not http(s)."""
        client = cls(base_url, "", "", host, timeout)
        client.user = None
        client._credentials = {"key": key, "host": host}
        return client

    def register(self, timeout: float | None = None) -> str:
        """Create the user and open a session; AlreadyRegistered when the user exists. ValueError with a
        key: a key belongs to a registered user."""
        if self.user is None:
            raise ValueError("a client with a key does not register: the key's user exists")
        status, document = self._call("POST", "/register", self._credentials, timeout)
        if status == 400 and document.get("reason") == ALREADY_REGISTERED:
            raise AlreadyRegistered(ALREADY_REGISTERED)
        return self._token(status, document, "registration")

    def log_in(self, timeout: float | None = None) -> str:
        """Open a new session; CredentialsRefused on a wrong password or an unknown user, KeyRefused on an
        unknown or revoked key (PROTOCOL.md part 4: 401)."""
        status, document = self._call("POST", "/login", self._credentials, timeout)
        if status == 401 and self.user is None:
            raise KeyRefused(f"log in refused: {document.get('reason', status)}")
        return self._token(status, document, "log in")

    def post_samples(self, token: str, samples: Sequence[Sample], timeout: float | None = None) -> None:
        """Store the samples all or nothing (POST /samples, 1..10,000 of them): one sample in the single
        form, `{"hash", "time", "metrics"}`, several as a batch, `{"hash", "samples": [...]}`."""
        rows = [{"time": s.taken_at, "metrics": dict(s.metrics)} for s in samples]
        body: dict[str, Any] = (
            {"hash": token, **rows[0]} if len(rows) == 1 else {"hash": token, "samples": rows}
        )
        status, document = self._call("POST", "/samples", body, timeout)
        if status in (400, 413):
            reason = str(document.get("reason", ""))
            detail = document.get("detail")
            detail = detail if isinstance(detail, str) else None
            # The bad sample is named in the reason or in the detail beside it (PROTOCOL.md, errors).
            index = _SAMPLE_INDEX.search(f"{reason} {detail or ''}")
            raise Rejected(status, reason, int(index.group(1)) if index else None, detail)
        self._expect_ok(status, document)

    def stored_values(
        self, token: str, metrics: Sequence[str], start: float, end: float, timeout: float | None = None
    ) -> set[StoredValue]:
        """The host's stored values of the metrics within [start, end], every session of the host merged
        (GET /samples?host=NAME), as (metric, time, value)."""
        found: set[StoredValue] = set()
        for first in range(0, len(metrics), MAX_METRICS_PER_READ):
            names = metrics[first : first + MAX_METRICS_PER_READ]
            query = [
                ("hash", token),
                ("host", self.host),
                ("start_time", repr(start)),
                ("cur_time", repr(end)),
            ]
            query += [("metric", name) for name in names]
            status, document = self._call("GET", "/samples?" + urllib.parse.urlencode(query), None, timeout)
            self._expect_ok(status, document)
            payload = document.get("payload")
            if not isinstance(payload, dict):
                raise ServerUnavailable("the answer holds no payload: is --server a perfmon server?")
            for name in names:
                found.update((name, row["timestamp"], row["value"]) for row in payload.get(name, []))
        return found

    def _token(self, status: int, document: dict[str, Any], what: str) -> str:
        if status in (400, 401):
            raise CredentialsRefused(f"{what} refused: {document.get('reason', status)}")
        self._expect_ok(status, document)
        token = document.get("hash")
        if not isinstance(token, str):
            raise ServerUnavailable(f"{what}: the answer holds no session")
        return token

    @staticmethod
    def _expect_ok(status: int, document: dict[str, Any]) -> None:
        if status == 401:
            raise SessionExpired(f"server answered 401: {document.get('reason', '')}")
        if status == 403:
            raise Forbidden(f"server answered 403: {document.get('reason', '')}")
        if status != 200:
            # A 404 or 405 means a wrong --server more likely than bad samples: keep them, say so, retry.
            raise ServerUnavailable(f"server answered {status}: {document.get('reason', '')}")

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None, timeout: float | None
    ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) in __init__
            self.base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            try:
                with urllib.request.urlopen(request, timeout=timeout or self._timeout) as answer:  # noqa: S310
                    return answer.status, _json_object(answer.read())
            except urllib.error.HTTPError as answer:
                with answer:
                    status, document = answer.code, _json_object_or_empty(answer.read())
                if status >= 500:
                    raise ServerUnavailable(
                        f"server answered {status}: {document.get('reason', '')}",
                        _seconds(answer.headers.get("Retry-After")),
                    ) from None
                return status, document
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise ServerUnavailable(f"no answer from {self.base_url}: {_describe(error)}") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError:
        raise ServerUnavailable("the answer is not JSON: is --server a perfmon server?") from None
    if not isinstance(document, dict):
        raise ServerUnavailable("the answer is not a JSON object: is --server a perfmon server?")
    return document


def _json_object_or_empty(raw: bytes) -> dict[str, Any]:
    """An error's body: perfmon's JSON `reason`, or nothing to show when a proxy answered in HTML."""
    try:
        return _json_object(raw)
    except ServerUnavailable:
        return {}


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the agent's own back-off will do


def _describe(error: BaseException) -> str:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror  # "Connection refused" rather than "[Errno 111] Connection refused"
    return str(reason) or type(reason).__name__
