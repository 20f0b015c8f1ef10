"""The perfmon HTTP API as the agent calls it, over the standard library's urllib, every call with a timeout.

Answers become return values or the errors of `server.py`; the wire format lives only in this module."""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from perfmon.agent.model import Sample, StoredSession
from perfmon.agent.ports import (
    AlreadyRegistered,
    CredentialsRefused,
    PerfmonServer,
    Rejected,
    ServerUnavailable,
    SessionExpired,
)

ALREADY_REGISTERED = "User is already registered"
_SAMPLE_INDEX = re.compile(r"samples\[(\d+)\]")


class ServerClient(PerfmonServer):
    """One perfmon server, one user; the password is kept to log in again when a session expires."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the server must be an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.user = user
        self._password = password
        self._timeout = timeout

    def register(self, timeout: float | None = None) -> str:
        """Create the user and open a session; AlreadyRegistered when the user exists."""
        status, document = self._call("POST", "/register", self._credentials(), timeout)
        if status == 400 and document.get("reason") == ALREADY_REGISTERED:
            raise AlreadyRegistered(ALREADY_REGISTERED)
        return self._token(status, document, "registration")

    def log_in(self, timeout: float | None = None) -> str:
        """Open a new session; CredentialsRefused on a wrong password or an unknown user."""
        status, document = self._call("POST", "/login", self._credentials(), timeout)
        return self._token(status, document, "log in")

    def post_samples(self, token: str, samples: Sequence[Sample], timeout: float | None = None) -> None:
        """Store the samples as one all-or-nothing batch (1..10,000 of them)."""
        body = {"hash": token, "samples": [{"cpu": s.cpu, "time": s.taken_at} for s in samples]}
        status, document = self._call("POST", "/cpu", body, timeout)
        if status in (400, 413):
            reason = str(document.get("reason", ""))
            index = _SAMPLE_INDEX.search(reason)
            raise Rejected(status, reason, int(index.group(1)) if index else None)
        self._expect_ok(status, document)

    def sessions(self, token: str, timeout: float | None = None) -> list[StoredSession]:
        """Every session of the user, with the span of its samples."""
        status, document = self._call(
            "GET", "/sessions?" + urllib.parse.urlencode({"hash": token}), None, timeout
        )
        self._expect_ok(status, document)
        return [StoredSession(row["session"], row["first"], row["last"]) for row in document["payload"]]

    def stored_samples(
        self, token: str, session: str, start: float, end: float, timeout: float | None = None
    ) -> list[Sample]:
        """The samples of one of the user's sessions taken within [start, end]."""
        query = {"hash": token, "session": session, "start_time": repr(start), "cur_time": repr(end)}
        status, document = self._call("GET", "/cpu?" + urllib.parse.urlencode(query), None, timeout)
        self._expect_ok(status, document)
        return [Sample(row["cpu"], row["timestamp"]) for row in document["payload"]]

    def _credentials(self) -> dict[str, str]:
        return {"user": self.user, "passwd": self._password}

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
