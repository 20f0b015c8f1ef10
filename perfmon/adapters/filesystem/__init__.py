"""The default storage: plain files under a data dir, safe against races, crashes and hostile names.

Layout under the data dir (every file name is derived, never taken from user input):

    users/<key>.json         a user: {"name": ..., "password_hash": ...}; created whole or not at all
    users/<key>.sessions     the user's session tokens, one per line, oldest first; may name a session
                             whose record a crash kept from being written (readers skip those)
    sessions/<token>.json    a session: {"user": ..., "created_at": ...}; its existence commits the session
    sessions/<token>.csv     the session's samples, ready for a spreadsheet: the header `cpu,time`,
                             then one `cpu,time` line per sample, floats in repr() so they round-trip
    tmp/                     temporary files, linked into place once complete

<key> is a readable slug of the name's [A-Za-z0-9_-] characters (at most 32, maybe none) + "~" + the
SHA-256 of the name in UTF-8: it cannot leave its folder, and two names never share it.
<token> is the canonical UUID string of the session.
"""

from __future__ import annotations

from perfmon.adapters.filesystem.storage import FileStorage

__all__ = ["FileStorage"]
