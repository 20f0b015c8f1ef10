"""The default storage: plain files under a data dir, safe against races, crashes and hostile names.

Layout under the data dir (every file name is derived, never taken from user input):

    users/<key>.json         a user: {"name": ..., "password_hash": ...}; created whole or not at all
    users/<key>.sessions     the user's session tokens, one per line, oldest first; may name a session
                             whose record a crash kept from being written (readers skip those)
    users/<key>.keys         the ids of the user's access keys, one per line, in the order they were made;
                             may name a key whose record a crash kept from being written (readers skip those)
    sessions/<token>.json    a session: {"user": ..., "created_at": ..., "host": ... or null, "scope": "all",
                             "ingest" or "read", "key": the id of the key that opened it, or null}; its
                             existence commits the session (a record of an earlier release has no "host":
                             none; no "scope" and "key": a password session, scope "all")
    sessions/<token>/        the session's series, made when the session starts (appending needs it):
        session.lock         flock()ed by writers (exclusive) and readers (shared): one lock per session;
                             its first 8 bytes are the holder tag of the last writer (open_sessions.py)
        session.journal      how to undo a write to several files that never finished (journal.py)
        status.csv           the session's status (seen, first, the latest value and time of each metric),
                             rewritten by each append that tells a receive time (a session on a host's)
                             in the same journalled write as its samples; made by the first (status_file.py)
        <metric>/            one series, named by its metric ([a-z][a-z0-9_]{0,63})
            <day>.csv        its samples taken on the UTC day <day> (YYYY-MM-DD), ready for a spreadsheet:
                             the header `<metric>,time`, then `value,time` lines in arrival order, floats
                             in repr() so they round-trip; appended whole (segments.py, appends.py)
            <day>.unsorted   present when a late sample left <day>.csv out of time order
            <day>.csv.xz     the day once closed and compacted: sorted by time, `xzcat` prints the CSV
            <day>.idx        where each xz stream of <day>.csv.xz starts (compressed.py, compaction.py)
            <day>.late.csv   samples for <day> that came after it was compacted; folded into <day>.csv.xz
                             once rolled up and left alone for an hour (folding.py)
            <day>.folded     present while a fold is installed (or was cut short): which compacted
                             segment holds the late file's samples (folding.py)
            rolled.csv       every plain segment, and how far it is rolled up (watermarks.py)
            minutes/<day>.csv, hours/<YYYY-MM>.csv, days/<YYYY>.csv
                             the rollups of the series: a row per bucket of a minute, an hour, a UTC day,
                             `start,count,sum,min,max,first,last` (rollup_rows.py, rollup_files.py)
    closed/<token>           present once the session is logged out (POST /logout), holding when (repr());
                             linked into place whole. A session stays: it reads as closed (PROTOCOL.md part 4)
    keys/<id>.json           an access key: {"user", "scope": "ingest" or "read", "name", "created_at",
                             "digest": the SHA-256 of the key in hex (never the key), "revoked_at": null or
                             when}; its appearance commits the key, its rewrite (aside, then renamed over it)
                             with revoked_at commits a revocation, which also closes the sessions it opened
    keys/<digest>.id         the id of the key with that digest, for a login's lookup: made before the
                             record, removed after it is marked revoked; the record decides (keys.py)
    keys/used/<id>           the key's last_used, a float in repr(), rewritten whole and never smaller
    access.changes           a line per logout or revocation ("<time> logged out", "<time> revoked <id>",
                             never a token), appended once it is durable: its size, with keys/' and
                             closed/'s modification times, is the change mark that makes every process
                             read its cached sessions again within half a second (changes.py)
    tmp/                     temporary files, linked or renamed into place once complete

A data dir of an earlier release (`sessions/<token>.csv`, `<token>.pending`) is upgraded to this
layout when the storage opens it (upgrade.py). A session of the release before hosts has no status.csv:
it has no status (GET /hosts only sums up hosts' sessions, and it has no host) until its next append,
whose status counts from that append on; nothing scans its samples to make one. Maintenance
(maintenance.py: rolling.py, compaction.py, folding.py, pruning.py) keeps the rollups, compacts closed
days and drops what retention no longer keeps.

<key> is a readable slug of the name's [A-Za-z0-9_-] characters (at most 32, maybe none) + "~" + the
SHA-256 of the name in UTF-8: it cannot leave its folder, and two names never share it.
<token> is the canonical UUID string of the session, <id> a key id (16 lowercase hex digits), <digest> a
key's SHA-256 (64 lowercase hex digits), each checked before it becomes a path. A host's name and a key's
name are data in a record, never part of a path. A session holds at most 256 series (metric folders): an
append that would start more is refused whole (TooManySeries).
"""

from __future__ import annotations

from perfmon.adapters.filesystem.storage import FileStorage

__all__ = ["FileStorage"]
