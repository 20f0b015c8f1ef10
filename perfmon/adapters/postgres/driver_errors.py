"""What a PostgreSQL driver error tells, read one way for every adapter that talks to a database."""

from __future__ import annotations


def _driver_error(error: BaseException) -> BaseException:
    # SQLAlchemy wraps the driver's error in its own and keeps the original as `orig`.
    return getattr(error, "orig", None) or error


def first_line(error: BaseException) -> str:
    """The first line of the driver's message, or its type's name when it has none.

    The lines after it (the driver's DETAIL and CONTEXT, SQLAlchemy's statement and parameters) quote
    values, such as session tokens and rows holding passwords: they are never shown or logged.
    """
    cause = _driver_error(error)
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def violates(error: BaseException, sqlstate: str, constraint: str) -> bool:
    """True when the error breaks that constraint in that way (a SQLSTATE from psycopg2's errorcodes)."""
    cause = _driver_error(error)
    return (
        getattr(cause, "pgcode", None) == sqlstate
        and getattr(getattr(cause, "diag", None), "constraint_name", None) == constraint
    )
