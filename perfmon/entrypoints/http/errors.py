"""THE table from domain errors to HTTP answers, and the one JSON error shape: {"reason": ...}."""

from __future__ import annotations

import logging
from typing import Any

import falcon

from perfmon.domain.errors import (
    Forbidden,
    HostNotFound,
    InvalidCredentials,
    InvalidInput,
    KeyNotFound,
    PerfmonError,
    SessionNotFound,
    StorageUnavailable,
    TooManyAttempts,
    UnknownSession,
    UsernameTaken,
)
from perfmon.entrypoints.access_log import loggable_path
from perfmon.entrypoints.log_redaction import safe_traceback

logger = logging.getLogger(__name__)

BAD_ARGUMENTS = "Bad arguments"
RETRY_AFTER_SECONDS = 5

# Domain error -> (status, reason). Reasons are part of the wire protocol: change none of them.
_ANSWERS: dict[type[PerfmonError], tuple[str, str]] = {
    InvalidInput: (falcon.HTTP_400, BAD_ARGUMENTS),
    UsernameTaken: (falcon.HTTP_400, "User is already registered"),
    InvalidCredentials: (falcon.HTTP_401, "Wrong credentials or user is not registered"),
    SessionNotFound: (falcon.HTTP_404, "No such session"),
    HostNotFound: (falcon.HTTP_404, "No such host"),
    KeyNotFound: (falcon.HTTP_404, "No such key"),
    Forbidden: (falcon.HTTP_403, "Forbidden"),
    StorageUnavailable: (falcon.HTTP_503, "Storage unavailable, retry later"),
    TooManyAttempts: (falcon.HTTP_429, "Too many attempts, retry later"),
}
# The original protocol words the same 401 by what the client was doing: changing (POST) or reading (GET).
# PROTOCOL.md part 4 gives DELETE /keys/{id} no text of its own; revoking a key changes data, so it is
# worded as a POST is (any other method, as a GET).
_POST_401 = "Not authorized user try to post data, please login"
_UNKNOWN_SESSION_REASONS = {
    "POST": _POST_401,
    "DELETE": _POST_401,
    "GET": "Not authorized user try to get data, please login",
}


class BadArguments(falcon.HTTPBadRequest):
    """A request that is not what the protocol asks for: `reason` "Bad arguments", `detail` naming the field
    and the rule it breaks (PROTOCOL.md, top: a 400 always carries a detail).

    Part 2's batch errors also carry the detail in the reason ("Bad arguments: samples[i] ..."), as that
    row of the protocol says and as clients already parse it: `in_reason` keeps that form.
    """

    def __init__(self, detail: str, *, in_reason: bool = False) -> None:
        super().__init__(description=f"{BAD_ARGUMENTS}: {detail}" if in_reason else BAD_ARGUMENTS)
        self.detail = detail


# The detail of a 400 that the domain raised: its message names the field and the rule.
_DOMAIN_DETAILS: dict[type[PerfmonError], str] = {
    UsernameTaken: "user names a registered user",
}


def _answer_domain_error(
    req: falcon.Request, resp: falcon.Response, error: PerfmonError, params: Any
) -> None:
    if isinstance(error, UnknownSession):
        status, reason = (
            falcon.HTTP_401,
            _UNKNOWN_SESSION_REASONS.get(req.method, _UNKNOWN_SESSION_REASONS["GET"]),
        )
    else:
        answer = next(
            (answer for error_class, answer in _ANSWERS.items() if isinstance(error, error_class)), None
        )
        if answer is None:
            # A domain error nobody mapped is a bug of ours, answered like any other: a logged 500.
            _answer_unexpected_error(req, resp, error, params)
            return
        status, reason = answer
    if isinstance(error, StorageUnavailable):
        logger.warning("storage unavailable: %s", error)
        resp.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
    if isinstance(error, TooManyAttempts):
        resp.set_header("Retry-After", str(error.retry_after))
    resp.status = status
    resp.media = _error_document(reason, _detail_of(error) if status == falcon.HTTP_400 else None)


def _detail_of(error: PerfmonError) -> str:
    for error_class, detail in _DOMAIN_DETAILS.items():
        if isinstance(error, error_class):
            return detail
    return str(error) or type(error).__name__


def _error_document(reason: str, detail: str | None) -> dict[str, str]:
    return {"reason": reason} if detail is None else {"reason": reason, "detail": detail}


def _answer_unexpected_error(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: Any
) -> None:
    if isinstance(error, falcon.HTTPError):
        # Falcon's own errors (404, 405, 413, ...) go through the serializer below.
        raise error
    # Not logger.exception: exception texts carry data (a driver's DETAIL line repeats a session token).
    # The path as the access log shows it: a client may have put a key or a session hash in it (DELETE
    # /keys/<key> instead of its id), or a newline (%0A) that would start a forged line.
    path = loggable_path(req.path)
    logger.error("unexpected error answering %s %s\n%s", req.method, path, safe_traceback(error))
    resp.status = falcon.HTTP_500
    resp.media = {"reason": "Internal error"}


def _serialize_http_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Every error is {"reason": text}: our description, or the status line's words; a 400 adds its detail."""
    resp.content_type = falcon.MEDIA_JSON
    if isinstance(error, BadArguments):
        resp.media = _error_document(error.description or BAD_ARGUMENTS, error.detail)
    elif error.status_code == 400:
        # A 400 that Falcon raised by itself: its description is the closest thing to a detail.
        resp.media = _error_document(BAD_ARGUMENTS, error.description or "the request is malformed")
    else:
        resp.media = {"reason": error.description or error.title}


def register_error_handlers(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Install the mapping; Falcon picks the most specific handler, so domain errors win over Exception."""
    app.add_error_handler(Exception, _answer_unexpected_error)
    app.add_error_handler(PerfmonError, _answer_domain_error)
    app.set_error_serializer(_serialize_http_error)
