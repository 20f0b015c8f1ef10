"""The model: users, sessions, samples and series, each validated when it is made."""

from __future__ import annotations

import bisect
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


@dataclass(frozen=True)
class Session:
    """A login of a user; its token is the `hash` the clients carry."""

    token: str
    user: Username
    created_at: float


# The metric of part 1's samples: every call of PROTOCOL.md part 1 and 2 reads and writes this series.
CPU = "cpu"
# PROTOCOL.md part 3: a metric name matches this.
_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


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
class SessionOverview:
    """A session with the summary of its samples, as listed to its user."""

    session: Session
    samples: SampleSummary


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
