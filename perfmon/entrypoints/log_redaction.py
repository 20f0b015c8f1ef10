"""Tracebacks fit for the log: no session hash, key or password hash in any line.

An exception's text is data: the database driver's DETAIL line repeats the key that broke a constraint
(a session token, for a sample of a vanished session), SQLAlchemy appends the statement, an OSError
names its file (sessions/<token>.csv). The frames of a traceback are code, and safe.
"""

from __future__ import annotations

import traceback

from perfmon.domain.redaction import redact


def first_line(error: BaseException) -> str:
    """The error's type and the first line of its message, redacted: what follows the first line (the
    driver's DETAIL and CONTEXT, SQLAlchemy's [SQL: ...] and parameters) is where values are."""
    lines = str(error).strip().splitlines()
    kind = f"{type(error).__module__}.{type(error).__qualname__}"
    return f"{kind}: {redact(lines[0])}" if lines else kind


_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def safe_traceback(error: BaseException) -> str:
    """The traceback of the error and of those it was raised from or while handling, as Python prints
    it, but with each exception's message cut to its redacted first line."""
    # Newest first, each with the sentence that links the one before it (its cause or context) to it.
    chain: list[tuple[BaseException, str]] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen, _ in chain):
        if current.__cause__ is not None:
            chain.append((current, _CAUSE))
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            chain.append((current, _CONTEXT))
            current = current.__context__
        else:
            chain.append((current, ""))
            current = None
    parts: list[str] = []
    for index in range(len(chain) - 1, -1, -1):
        exception = chain[index][0]
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(exception.__traceback__))
        parts.append(first_line(exception) + "\n")
        if index > 0:
            parts.append(f"\n{chain[index - 1][1]}\n\n")
    return "".join(parts).rstrip("\n")
