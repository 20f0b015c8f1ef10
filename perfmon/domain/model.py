"""The model: users, sessions, samples and series, each validated when it is made."""

from __future__ import annotations

import bisect
import enum
import hashlib
import itertools
import math
import operator
import re
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

from perfmon.domain.errors import InvalidInput

MAX_USERNAME_LENGTH = 128
MAX_PASSWORD_LENGTH = 1024
# Seconds since the Unix epoch; 1e11 is the year 5138, far beyond any real clock.
MAX_TIMESTAMP = 1e11


def _has_control_character(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


@dataclass(frozen=True)
class Username:
    """A user's name: 1..128 characters without control characters. Data, never a path."""

    value: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.value) <= MAX_USERNAME_LENGTH:
            raise InvalidInput("user name must have 1..128 characters")
        if _has_control_character(self.value):
            raise InvalidInput("user name must not contain control characters")


@dataclass(frozen=True)
class Password:
    """A clear-text password on its way to the hasher; its repr never shows it."""

    value: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.value) <= MAX_PASSWORD_LENGTH:
            raise InvalidInput("password must have 1..1024 characters")

    def __repr__(self) -> str:
        return "Password(***)"


@dataclass(frozen=True)
class User:
    """A registered user; only the password's hash is ever kept."""

    name: Username
    password_hash: str


def parse_session_token(text: str) -> str:
    """Return the canonical form of a session token, or raise InvalidInput if it is no UUID."""
    try:
        return str(uuid.UUID(text))
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput("session hash must be a UUID") from None


def is_canonical_session_token(text: str) -> bool:
    """True for a token already in the form parse_session_token gives, the only form that storages see."""
    try:
        return parse_session_token(text) == text
    except InvalidInput:
        return False


MAX_HOST_NAME_LENGTH = 128


def check_host_name(name: str) -> str:
    """A host's name (PROTOCOL.md part 3: the user-name rules, 1..128 characters, no control
    characters), or InvalidInput. Names are per user, and data: never a path or SQL."""
    if not (isinstance(name, str) and 1 <= len(name) <= MAX_HOST_NAME_LENGTH):
        raise InvalidInput("host must be a string of 1..128 characters")
    if _has_control_character(name):
        raise InvalidInput("host must not contain control characters")
    return name


class Permission(enum.Enum):
    """What a request does, as scopes grant it (PROTOCOL.md part 4)."""

    POST = "post samples"
    READ = "read"
    MANAGE_KEYS = "make, list and revoke keys"
    LOG_OUT = "log out"


class Scope(enum.Enum):
    """What a session may do, by how it was opened (PROTOCOL.md part 4): with the user's password,
    everything (as in part 1); with an ingest key, post; with a read key, read. Any may log out."""

    ALL = "all"
    INGEST = "ingest"
    READ = "read"

    def allows(self, permission: Permission) -> bool:
        """True when a session of this scope may do it."""
        return permission in _GRANTS[self]


_GRANTS: dict[Scope, frozenset[Permission]] = {
    Scope.ALL: frozenset(Permission),
    Scope.INGEST: frozenset({Permission.POST, Permission.LOG_OUT}),
    Scope.READ: frozenset({Permission.READ, Permission.LOG_OUT}),
}


@dataclass(frozen=True)
class Session:
    """A login of a user; its token is the `hash` the clients carry. A session opened by an agent
    belongs to the host it watches (PROTOCOL.md part 3); the original client's have none.

    A session opened with an access key has the key's scope and id (PROTOCOL.md part 4). A closed
    session (logged out, or opened with a key since revoked) is refused like an unknown one, but stays:
    its samples are read through the user's other sessions."""

    token: str
    user: Username
    created_at: float
    host: str | None = None
    scope: Scope = Scope.ALL
    key_id: str | None = None
    closed: bool = False


# A session's public id: "s-" and 32 hex characters, never a UUID (so never taken for a session hash).
_PUBLIC_SESSION_ID = re.compile(r"s-[0-9a-f]{32}")


def public_session_id(token: str) -> str:
    """A name for the session that grants nothing: the first 128 bits of a SHA-256 of its token, so the
    token cannot be found from it. GET /sessions gives it instead of the token to sessions opened with a
    key: a read key's session (a wall display) may read every session of its user, but must not learn a
    password session's hash, which would let it post and manage keys (PROTOCOL.md part 4)."""
    return "s-" + hashlib.sha256(b"perfmon public session id\0" + token.encode("ascii")).hexdigest()[:32]


def is_public_session_id(text: str) -> bool:
    """True when the text has the form of a public session id (it may still name none)."""
    return _PUBLIC_SESSION_ID.fullmatch(text) is not None


# PROTOCOL.md part 4: a key is pmk_ and 43 URL-safe base64 characters, 32 random bytes unpadded.
KEY_PREFIX = "pmk_"
_KEY_TEXT = re.compile(r"pmk_[A-Za-z0-9_-]{43}")
# A key's id: 16 lowercase hex characters (64 random bits), public, safe in a path.
_KEY_ID = re.compile(r"[0-9a-f]{16}")
MAX_KEY_NAME_LENGTH = 128
# The scopes a key may have: a key never grants everything (PROTOCOL.md part 4).
KEY_SCOPES = (Scope.INGEST, Scope.READ)


def is_key_text(text: object) -> bool:
    """True when the text has the form of an access key (it may still name none)."""
    return isinstance(text, str) and _KEY_TEXT.fullmatch(text) is not None


def is_key_id(text: object) -> bool:
    """True when the text has the form of a key id (it may still name none)."""
    return isinstance(text, str) and _KEY_ID.fullmatch(text) is not None


def key_digest(key: str) -> str:
    """The SHA-256 of the key's text, in hex: what storages keep instead of the key.

    A fast hash is right here, unlike for passwords: the key holds 256 random bits, so no guess of it can
    be checked faster than by asking the server (OWASP Password Storage Cheat Sheet, on high-entropy
    secrets). Raises InvalidInput for a text that is no key."""
    if not is_key_text(key):
        raise InvalidInput("key must be pmk_ and 43 URL-safe base64 characters")
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def check_key_name(name: object) -> str:
    """A key's name: 1..128 characters without control characters (PROTOCOL.md part 4), or InvalidInput."""
    if not (isinstance(name, str) and 1 <= len(name) <= MAX_KEY_NAME_LENGTH):
        raise InvalidInput("name must be a string of 1..128 characters")
    if _has_control_character(name):
        raise InvalidInput("name must not contain control characters")
    return name


def check_key_scope(scope: object) -> Scope:
    """The scope a key is made with: "ingest" or "read" (PROTOCOL.md part 4), or InvalidInput."""
    for allowed in KEY_SCOPES:
        if scope == allowed.value:
            return allowed
    raise InvalidInput('scope must be "ingest" or "read"')


@dataclass(frozen=True)
class AccessKey:
    """A user's access key, as stored: its digest (key_digest), never the key itself.

    `created_at` and `last_used` are seconds since the epoch; `last_used` is the latest login with the
    key or request of a session it opened (kept to within a minute), None before any."""

    id: str
    user: Username
    scope: Scope
    name: str
    created_at: float
    digest: str
    last_used: float | None = None

    def __repr__(self) -> str:
        # The digest is no key, but it is what a stolen key is checked against: keep it out of logs.
        return f"AccessKey(id={self.id!r}, scope={self.scope.value!r}, name={self.name!r})"


# The metric of part 1's samples: every call of PROTOCOL.md part 1 and 2 reads and writes this series.
CPU = "cpu"
# PROTOCOL.md part 3: a metric name matches this.
_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


# PROTOCOL.md part 3: a sample carries 1..64 metrics; a session holds at most 256 series.
MAX_METRICS_PER_SAMPLE = 64
MAX_SERIES_PER_SESSION = 256

# PROTOCOL.md part 3: the metrics `perfmon agent` sends every interval, and their units.
CATALOGUE: dict[str, str] = {
    "cpu": "% of all CPUs busy",
    "mem": "% of memory in use",
    "swap": "% of swap in use",
    "load1": "load average over 1 minute",
    "load5": "load average over 5 minutes",
    "load15": "load average over 15 minutes",
    "disk": "% used of the agent's --disk-path filesystem",
    "disk_read": "bytes/s read over all disks",
    "disk_write": "bytes/s written over all disks",
    "net_rx": "bytes/s received over all interfaces but loopback",
    "net_tx": "bytes/s sent over all interfaces but loopback",
    "temp": "°C of the hottest sensor",
}
# The catalogue's metrics that cannot be negative: all but `temp` (so `cpu` keeps part 1's rule).
NON_NEGATIVE_METRICS = frozenset(CATALOGUE) - {"temp"}


def check_metric_name(name: str) -> str:
    """The name of a series (PROTOCOL.md part 3: `[a-z][a-z0-9_]{0,63}`), or InvalidInput.

    Storages may use it in a file name: the rule keeps it inert in any shell or filesystem."""
    if not (isinstance(name, str) and _METRIC_NAME.fullmatch(name)):
        raise InvalidInput("metric name must match [a-z][a-z0-9_]{0,63}")
    return name


@dataclass(frozen=True, slots=True)
class Sample:
    """The values of one or more metrics taken at one time (seconds since the epoch).

    `values` maps metric names to finite numbers of any sign: which metric may be negative is the
    API's rule (PROTOCOL.md part 3), not storage's. Each metric's values form a series of the session.
    """

    taken_at: float
    values: Mapping[str, float]

    @classmethod
    def of_checked(cls, taken_at: float, values: Mapping[str, float]) -> Sample:
        """A sample of values that a stricter rule has already checked (a CpuSample): the checks of
        __post_init__ cost a microsecond a sample, a millisecond per batch of 1,000."""
        sample = object.__new__(cls)
        object.__setattr__(sample, "taken_at", taken_at)
        object.__setattr__(sample, "values", values)
        return sample

    def __post_init__(self) -> None:
        if not (math.isfinite(self.taken_at) and 0 <= self.taken_at < MAX_TIMESTAMP):
            raise InvalidInput("time must be a finite number in [0, 1e11)")
        if not self.values:
            raise InvalidInput("a sample holds at least one metric")
        for name, value in self.values.items():
            check_metric_name(name)
            if not (isinstance(value, float | int) and math.isfinite(value)):
                raise InvalidInput(f"{name} must be a finite number")


def _is_finite(value: float) -> bool:
    """math.isfinite, also for an integer too large for a double (10**400), which is not finite here."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def metric_sample(taken_at: float, values: Mapping[str, float]) -> Sample:
    """A sample of PROTOCOL.md part 3: 1..64 metrics with valid names and finite values, those of the
    catalogue but `temp` >= 0; InvalidInput naming the metric (`mem must be a finite number >= 0`)
    or the time otherwise. Metrics are checked in the order given, so the first bad one is named."""
    if not (math.isfinite(taken_at) and 0 <= taken_at < MAX_TIMESTAMP):
        raise InvalidInput("time must be a finite number in [0, 1e11)")
    if not 1 <= len(values) <= MAX_METRICS_PER_SAMPLE:
        raise InvalidInput(f"metrics must hold 1..{MAX_METRICS_PER_SAMPLE} metrics")
    for name, value in values.items():
        if not (isinstance(name, str) and _METRIC_NAME.fullmatch(name)):
            raise InvalidInput(f"{name!r} is not a metric name: it must match [a-z][a-z0-9_]{{0,63}}")
        if isinstance(value, bool) or not isinstance(value, float | int) or not _is_finite(value):
            raise InvalidInput(f"{name} must be a finite number")
        if value < 0 and name in NON_NEGATIVE_METRICS:
            raise InvalidInput(f"{name} must be a finite number >= 0")
    return Sample.of_checked(taken_at, values)


@dataclass(frozen=True, slots=True)
class CpuSample:
    """One CPU reading of PROTOCOL.md part 1: a percentage (>= 0) taken at a time in epoch seconds."""

    cpu: float
    taken_at: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpu) and self.cpu >= 0):
            raise InvalidInput("cpu must be a finite number >= 0")
        if not (math.isfinite(self.taken_at) and 0 <= self.taken_at < MAX_TIMESTAMP):
            raise InvalidInput("time must be a finite number in [0, 1e11)")

    def sample(self) -> Sample:
        """The reading as a sample of the `cpu` series."""
        return Sample.of_checked(self.taken_at, {CPU: self.cpu})


@dataclass(frozen=True, slots=True)
class Point:
    """One value of a series and the time it was taken at (seconds since the epoch)."""

    value: float
    taken_at: float


@dataclass(frozen=True, eq=False)
class SampleSeries(Sequence[Point]):
    """One series' values as two parallel columns, oldest first: a read of 100,000 values makes no object
    per value. Still a sequence of Points for code that wants one, and equal to any such sequence.
    """

    values: list[float]
    taken_at: list[float]

    def __len__(self) -> int:
        return len(self.taken_at)

    @overload
    def __getitem__(self, index: int) -> Point: ...
    @overload
    def __getitem__(self, index: slice) -> SampleSeries: ...
    def __getitem__(self, index: int | slice) -> Point | SampleSeries:
        if isinstance(index, slice):
            return SampleSeries(self.values[index], self.taken_at[index])
        return Point(self.values[index], self.taken_at[index])

    def __iter__(self) -> Iterator[Point]:
        return map(Point, self.values, self.taken_at)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SampleSeries):
            return self.values == other.values and self.taken_at == other.taken_at
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable columns

    @classmethod
    def of(cls, points: Iterable[Point]) -> SampleSeries:
        """The columns of the points, in their order."""
        series = cls([], [])
        for point in points:
            series.values.append(point.value)
            series.taken_at.append(point.taken_at)
        return series

    def within(self, time_range: TimeRange) -> SampleSeries:
        """The values inside the range, sorted by time; equal times keep their order (a stable sort)."""
        times = self.taken_at
        if not all(map(operator.le, times, itertools.islice(times, 1, None))):
            # Arrival order is not time order (a clock stepped back): sort, stably, then cut.
            order = sorted(range(len(times)), key=times.__getitem__)
            return SampleSeries([self.values[i] for i in order], [times[i] for i in order]).within(time_range)
        low = 0 if time_range.start is None else bisect.bisect_left(times, time_range.start)
        high = len(times) if time_range.end is None else bisect.bisect_right(times, time_range.end)
        return self[low:high]


@dataclass(frozen=True)
class TimeRange:
    """Inclusive bounds on a sample's time; None leaves that side open."""

    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        for bound in (self.start, self.end):
            if bound is not None and not math.isfinite(bound):
                raise InvalidInput("time bounds must be finite numbers")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise InvalidInput("start_time must not be after cur_time")

    def contains(self, moment: float) -> bool:
        """True when the moment lies within both bounds."""
        if self.start is not None and moment < self.start:
            return False
        return self.end is None or moment <= self.end


EVERYTHING = TimeRange()

MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class SampleSummary:
    """How many samples a session holds, and the times of its first and last."""

    count: int
    first: float | None
    last: float | None


NO_SAMPLES = SampleSummary(0, None, None)


@dataclass(frozen=True)
class SessionStatus:
    """What a session's writes leave behind for its host's summary (PROTOCOL.md part 3, GET /hosts):
    `seen` the server's clock at its latest accepted write (None until a write that told it), `first`
    the earliest sample time ever stored, and per metric the latest sample (greatest time; of equal
    times the last to arrive). Times in seconds since the epoch."""

    seen: float | None
    first: float
    latest: Mapping[str, Point]

    @property
    def last(self) -> float:
        """The latest sample time of any metric."""
        return max(point.taken_at for point in self.latest.values())


def moved_status(
    status: SessionStatus | None, samples: Iterable[Sample], received_at: float
) -> SessionStatus:
    """The status after an append of the samples (in arrival order) received at `received_at` (seconds
    since the epoch): what every storage keeps, computed the same way by each."""
    latest = dict(status.latest) if status is not None else {}
    first = status.first if status is not None else math.inf
    for sample in samples:
        moment = sample.taken_at
        first = min(first, moment)
        for metric, value in sample.values.items():
            known = latest.get(metric)
            # Equal times: the later arrival is the latest (reads list equal times in arrival order).
            if known is None or moment >= known.taken_at:
                latest[metric] = Point(float(value), moment)
    return SessionStatus(seen=received_at, first=first, latest=latest)


@dataclass(frozen=True)
class HostOverview:
    """A host of a user, as GET /hosts lists it: its number of sessions, the first and last sample time
    over all its sessions and metrics, the latest `seen`, and the latest value of each metric (from the
    session that holds the metric's latest sample; equal times: the newer session's)."""

    name: str
    sessions: int
    first: float | None
    last: float | None
    seen: float | None
    latest: Mapping[str, float]


@dataclass(frozen=True)
class SessionOverview:
    """A session with the summary of its samples, as listed to its user, and the name the caller is to
    use for it (`session=` reads): its token for a password session, else its public id
    (public_session_id), as a key's session must not learn tokens that would grant more than it has."""

    session: Session
    samples: SampleSummary
    reference: str


def bucket_start(moment: float, step: float) -> float:
    """The start of the step-wide bucket holding the moment: buckets are aligned on multiples of step.

    PostgreSQL computes the same expression in SQL, bit for bit (IEEE-754 doubles both): the first
    bucket is spelt out because there, unlike in Python, a quotient that rounds to 0 (a subnormal time)
    is an error; from the second bucket on the quotient is at least 1.
    """
    if moment < step:
        return 0.0
    return math.floor(moment / step) * step


class Bucket(NamedTuple):
    """The samples of one step-wide slice of time, reduced to their mean, minimum, maximum and count.

    A named tuple: a step read makes one per bucket, a thousand per chart."""

    start: float
    mean: float
    low: float
    high: float
    # Shadows tuple.count(), which nothing here calls: the field's name is the domain's word.
    count: int  # type: ignore[assignment]


def check_step(step: float) -> float:
    """A downsampling step must be a finite number of seconds > 0, and not so tiny (below about 5.6e-298)
    that a sample's time divided by it overflows a double: no storage could compute such buckets."""
    if not (math.isfinite(step) and step > 0 and math.isfinite(MAX_TIMESTAMP / step)):
        raise InvalidInput("step must be a finite number of seconds > 0 (at least about 5.6e-298)")
    return step
