"""The schema as SQLAlchemy Core tables: one table per concept, linked by foreign keys."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

# Deterministic constraint names: the migrations spell them out and the adapters recognise
# the unique violation on users.name and the writes of a vanished session or series by them.
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

# Users' access keys (PROTOCOL.md part 4), declared before sessions, which refer to them. A revoked key
# stays, with its revoked_at, as its sessions refer to it; no read lists it or finds it by its digest.
access_keys = Table(
    "access_keys",
    metadata,
    # 16 lowercase hex characters (model.is_key_id), public: it names the key in DELETE /keys/{id}.
    Column("id", Text, primary_key=True),
    Column("user_id", BigInteger, ForeignKey(users.c.id), nullable=False),
    Column(
        "scope",
        Text,
        CheckConstraint("scope IN ('ingest', 'read')", name="ck_access_keys_scope"),
        nullable=False,
    ),
    # 1..128 characters (model.check_key_name), as data.
    Column("name", Text, nullable=False),
    # Seconds since the epoch, as sessions.created_at.
    Column("created_at", Double, nullable=False),
    # The SHA-256 of the key in hex (model.key_digest), never the key: a login finds the key by it.
    Column("digest", Text, nullable=False, unique=True),
    # The latest use, kept to within a minute (access.KeyUsage); None before any.
    Column("last_used", Double),
    Column("revoked_at", Double),
    # Serves "the keys of a user, oldest first" and keeps the foreign key cheap to check.
    Index(None, "user_id", "created_at"),
)

sessions = Table(
    "sessions",
    metadata,
    # as_uuid=False: the domain carries tokens as canonical strings, the column stores 16 bytes.
    Column("token", Uuid(as_uuid=False), primary_key=True),
    Column("user_id", BigInteger, ForeignKey(users.c.id), nullable=False),
    Column("created_at", Double, nullable=False),
    # The host the session belongs to (check_host_name), None for the original client's sessions. No index:
    # a user's sessions are read by user_id and filtered by host, a few rows per user.
    Column("host", Text),
    # The session's status (SessionStatus), moved in the transaction of each append: `seen` the server's
    # clock at its latest write that told it, `first` the earliest sample time ever stored (None until the
    # first sample). The latest sample of each metric is on its series row.
    Column("seen", Double),
    Column("first", Double),
    # What the session may do (model.Scope): 'all' for a password login, else its key's scope.
    Column(
        "scope",
        Text,
        CheckConstraint("scope IN ('all', 'ingest', 'read')", name="ck_sessions_scope"),
        nullable=False,
        server_default="all",
    ),
    # The key that opened the session, None for a password login. A session of a revoked key reads closed
    # whatever its closed_at (a login may store its session as the key is being revoked).
    Column("key_id", Text, ForeignKey(access_keys.c.id)),
    # When it was logged out or its key revoked (seconds since the epoch); None while open.
    Column("closed_at", Double),
    # Serves "the sessions of a user, newest first" and keeps the foreign key cheap to check.
    Index(None, "user_id", "created_at"),
    # Finds a revoked key's sessions; partial, as most sessions have no key.
    Index(None, "key_id", postgresql_where=text("key_id IS NOT NULL")),
)

# The change mark of closings (session_cache.SessionCache): one row, whose mark every logout and revocation
# moves in its own transaction, so a process that sees the new mark also sees the change. A row rather than
# a sequence, as nextval is seen by others before the change commits. The row may be missing (no closing
# yet, or the tables emptied): the first bump inserts it.
access_changes = Table(
    "access_changes",
    metadata,
    Column("id", SmallInteger, CheckConstraint("id = 1", name="ck_access_changes_id"), primary_key=True),
    Column("mark", BigInteger, nullable=False),
)

# One row per named series of a session (issue 11): samples and rollups refer to it by a narrow id.
series = Table(
    "series",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("session_token", Uuid(as_uuid=False), ForeignKey(sessions.c.token), nullable=False),
    # A metric name (check_metric_name): [a-z][a-z0-9_]{0,63}.
    Column("metric", Text, nullable=False),
    # The series' latest sample (SessionStatus.latest): the greatest time, of equal times the greatest
    # samples.id (the arrival order reads list them in). None only while the series has no sample: it is
    # created in the transaction that stores its first. Not indexed, so the update of each append is HOT.
    Column("latest_value", Double),
    Column("latest_at", Double),
    Column("latest_id", BigInteger),
    # Finds a series by its session and name, and lists a session's series.
    UniqueConstraint("session_token", "metric", name="uq_series_session_token_metric"),
)

# Raw samples, partitioned by time: one partition per UTC day around now, made ahead by
# perfmon.adapters.postgres.partitions, and a DEFAULT partition for every other time (backfills, odd
# clocks), so that no sample is ever refused for want of a partition. Partitions are not in this module:
# they come and go with time and retention.
samples = Table(
    "samples",
    metadata,
    Column("series_id", BigInteger, nullable=False),
    # Seconds since the epoch: the partition key.
    Column("taken_at", Double, nullable=False),
    # The identity is the arrival order: it breaks ties between samples taken at the same time.
    Column("id", BigInteger, Identity(always=True), nullable=False),
    Column("value", Double, nullable=False),
    # The key is the one index: a range read of one series is one range scan of it in each partition the
    # range meets, rows in time then arrival order. A partitioned table's key must hold the partition key.
    PrimaryKeyConstraint("series_id", "taken_at", "id", name="pk_samples"),
    # No foreign key to series: a per-row check would double the cost of a bulk insert, and every write of a
    # series also writes its rollup rows, whose foreign key refuses a series that is not there.
    postgresql_partition_by="RANGE (taken_at)",
)

# Stored rollups (perfmon.domain.rollups): per series and width, one row per bucket, merged as samples
# arrive, in the transaction that stores them. Column order packs the fixed-width columns first.
rollups = Table(
    "rollups",
    metadata,
    Column("series_id", BigInteger, ForeignKey(series.c.id), nullable=False),
    # Seconds, one of ROLLUP_WIDTHS, and the bucket's start, bucket_start(t, width) computed in doubles.
    Column("width", Integer, nullable=False),
    # The exact sum of the values (downsampling.exact_sum), in units of 2^-1074: the whole number
    # total_mantissa * 2^total_shift. Kept so rather than as one number of 300 digits, 170 bytes to store
    # and microseconds to read: the shift is that of the bucket's least non-zero value, so the mantissa
    # of everyday values (0.25, 12.5, 99.75) has a few dozen bits.
    Column("total_shift", Integer, nullable=False),
    Column("start", Double, nullable=False),
    Column("count", BigInteger, nullable=False),
    # The least and greatest value; the flags tell whether the bucket holds a -0.0 and a 0.0, which
    # float8 comparisons take as equal (downsampling.zeros_ordered puts -0.0 below 0.0 from them).
    Column("low", Double, nullable=False),
    Column("high", Double, nullable=False),
    Column("first_at", Double, nullable=False),
    Column("last_at", Double, nullable=False),
    Column("negative_zero", Boolean, nullable=False),
    Column("positive_zero", Boolean, nullable=False),
    Column("total_mantissa", Numeric, nullable=False),
    # The key serves the upsert of each write and a range read of one series' buckets.
    PrimaryKeyConstraint("series_id", "width", "start", name="pk_rollups"),
    # Finds the buckets that retention drops, across every series.
    Index(None, "start"),
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
ACCESS_CHANGES_ROW = 1
SERIES_SESSION_FK = "fk_series_session_token_sessions"
ROLLUPS_SERIES_FK = "fk_rollups_series_id_series"
