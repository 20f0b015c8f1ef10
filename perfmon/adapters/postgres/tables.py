"""The schema as SQLAlchemy Core tables: one table per concept, linked by foreign keys."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)

# Deterministic constraint names: the migrations spell them out and the adapters recognise
# the unique violation on users.name and the samples of a vanished session by them.
metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

sessions = Table(
    "sessions",
    metadata,
    # as_uuid=False: the domain carries tokens as canonical strings, the column stores 16 bytes.
    Column("token", Uuid(as_uuid=False), primary_key=True),
    Column("user_id", BigInteger, ForeignKey(users.c.id), nullable=False),
    Column("created_at", Double, nullable=False),
    # Serves "the sessions of a user, newest first" and keeps the foreign key cheap to check.
    Index(None, "user_id", "created_at"),
)

cpu_samples = Table(
    "cpu_samples",
    metadata,
    # The identity is the arrival order: it breaks ties between samples taken at the same time.
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("session_token", Uuid(as_uuid=False), ForeignKey(sessions.c.token), nullable=False),
    Column("taken_at", Double, nullable=False),
    Column("cpu", Double, nullable=False),
    # One range scan answers "this session, this time range, by time then arrival".
    Index(None, "session_token", "taken_at", "id"),
)

# The failed-login counters of every perfmon process on the database (limits' Storage, fixed windows).
login_failures = Table(
    "login_failures",
    metadata,
    # The limits key: a rule, a client address, a window number and the digest of a user name.
    Column("key", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
    # Epoch seconds, as limits' storages keep them; the index finds expired counters to prune.
    Column("expires_at", Double, nullable=False, index=True),
)

USERS_NAME_UNIQUE = "uq_users_name"
CPU_SAMPLES_SESSION_FK = "fk_cpu_samples_session_token_sessions"
