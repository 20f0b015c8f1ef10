"""The calls of PROTOCOL.md part 4, access: POST /logout, POST /keys, GET /keys, DELETE /keys/{id}, and the
key form of POST /login's body (the login itself is resources.Login).

Thin as resources.py's: parse, call Access, shape the answer. The wire names live here. Every body and
query is checked before the session is looked at (its shape here, a key's scope and name in Access), so
the order of answers is always 400 (malformed), then 401 (no such session, or a closed one), then 403
(the session's scope does not allow it), then 404.
"""

from __future__ import annotations

from typing import Any

import falcon

from perfmon.domain.access import Access
from perfmon.domain.model import AccessKey
from perfmon.entrypoints.http.errors import BadArguments
from perfmon.entrypoints.http.parsing import read_json_object, require_string, required_param


def key_in(body: dict[str, Any]) -> str:
    """The key of a `POST /login {"key": K}` body: a string, and alone (no user or passwd beside it: which
    credential would count?). Its form is not checked here: a text that is no key is a wrong credential,
    401 like an unknown or revoked key (PROTOCOL.md part 4)."""
    mixed = [field for field in ("user", "passwd") if field in body]
    if mixed:
        raise BadArguments(f"key does not combine with {' or '.join(mixed)}: log in with one or the other")
    return require_string(body, "key")


class Logout:
    """POST /logout `{"hash"}` -> `{}`: the session is closed (401 on every call from then on); any
    session may close itself, whatever its scope."""

    def __init__(self, access: Access, max_body_bytes: int) -> None:
        self._access = access
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json_object(req, self._max_body_bytes)
        self._access.log_out(require_string(body, "hash"))
        resp.media = {}


class Keys:
    """POST /keys makes a key and shows it this once; GET /keys lists the user's live keys, oldest first,
    never the keys themselves. Only a session opened with the password may (403 for a key's)."""

    def __init__(self, access: Access, max_body_bytes: int) -> None:
        self._access = access
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """`{"hash", "scope": "ingest" | "read", "name"}` -> `{"id", "key", "scope", "name", "created"}`."""
        body = read_json_object(req, self._max_body_bytes)
        token = require_string(body, "hash")
        key, secret = self._access.make_key(token, body.get("scope"), body.get("name"))
        # The one answer that holds a key: no cache on the way or in the browser may keep it (RFC 9111).
        resp.cache_control = ["no-store"]
        resp.media = {
            "id": key.id,
            "key": secret,
            "scope": key.scope.value,
            "name": key.name,
            "created": key.created_at,
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """`?hash=H` -> `{"payload": [{"id", "scope", "name", "created", "last_used"}, ...]}`."""
        keys = self._access.keys(required_param(req, "hash"))
        resp.media = {"payload": [_key_document(key) for key in keys]}


def _key_document(key: AccessKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "scope": key.scope.value,
        "name": key.name,
        "created": key.created_at,
        "last_used": key.last_used,
    }


class Key:
    """DELETE /keys/{key_id}?hash=H -> `{}`: the key opens no session from then on and its sessions are
    closed; an id that is no live key of the caller's user (another user's, unknown, revoked, not an id)
    is 404 "No such key"."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key_id: str) -> None:
        self._access.revoke_key(required_param(req, "hash"), key_id)
        resp.media = {}
