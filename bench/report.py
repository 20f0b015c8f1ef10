"""The results table: medians of the repetitions, ratios to the ceiling, targets, and the data checks.

The tables are data. A section is a list of rows; a row is a list of cells, each a text or a figure read
from the runs: `Figure` (one variant's runs of the row's case: their median, ± half their range) or
`Ratio` (one variant's runs over another's, repetition by repetition: the median of the ratios). A
target is a ratio and a bound. `render` only fills them in: a new workload is new rows, not new code.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from . import workload as w
from .fleet import TIMEOUT_SECONDS, FleetResult
from .processes import WrkResult


@dataclass
class Check:
    """A write run's storage against its answers; counted in the run's unit (samples, users, sessions)."""

    acknowledged: int  # what 2xx answers said was stored
    stored: int  # what the storage holds from this run
    lost: int  # acknowledged and not stored: must be 0
    stored_unacknowledged: int  # stored, answer not seen: requests in flight when wrk stopped
    in_flight: int  # requests sent whose answer wrk did not wait for (at most one per connection)
    unexpected: int  # duplicates, half-stored batches, or samples no request carried: must be 0


@dataclass
class Measurement:
    """One run: its main figure (a rate, or a p50 in ms for get), its latency and its checks."""

    case: str
    variant: str  # "ceiling", "file", "db", "baseline-file", "baseline-db", "copy" or "argon2"
    rep: int
    value: float
    p50_ms: float | None = None
    check: Check | None = None
    result: WrkResult | None = None

    def describe(self) -> str:
        text = f"{self.case} {self.variant}: {_number(self.value)}"
        if self.result is not None:
            text += f", p50 {self.result.p50_ms:.3g} ms, {self.result.requests} answers"
            if self.result.not_ok:
                text += f", NON-2xx {dict(sorted(self.result.statuses.items()))}"
        if self.check is not None:
            text += (
                f", stored {self.check.stored}, lost {self.check.lost}, unexpected {self.check.unexpected}"
            )
        return text


def _number(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


Pick = Callable[[Measurement], float | None]

# The storage modes, in the order of every table's columns. A mode that was not measured (`--modes`)
# shows "—" in its cells and has no targets.
MODES = ("file", "db")
ANY_MODE = "any mode"
ANY_BASELINE = "the baseline of any mode"
# The variant of a mode served by the `--baseline` tree's perfmon: "baseline-file", "baseline-db".
BASELINE = "baseline-"


def baseline(mode: str) -> str:
    """The variant name of the baseline tree's server in that storage mode."""
    return BASELINE + mode


# The variant of a mode served by `perfmon serve --workers N` (N = workload.POST_WORKERS): "file-w2".
WORKERS = f"-w{w.POST_WORKERS}"
ANY_WORKERS = "the workers of any mode"


def workers(mode: str) -> str:
    """The variant name of the server of several processes in that storage mode."""
    return mode + WORKERS


def mode_of(variant: str) -> str:
    """The storage mode of a variant ("file" for "file", "baseline-file" and "file-w2"); any other
    variant (a reference: "ceiling", "copy", "argon2") as it is."""
    return variant.removeprefix(BASELINE).removesuffix(WORKERS)


@dataclass(frozen=True)
class Ran:
    """Holds when the report has runs of `case` with `variant` (ANY_MODE: with any mode measured)."""

    case: str
    variant: str = ANY_MODE


@dataclass(frozen=True)
class Figure:
    """A cell: the median over the repetitions of `pick` of `variant`'s runs of the row's case."""

    variant: str
    pick: Pick


@dataclass(frozen=True)
class Ratio:
    """A cell: `variant` ÷ `reference`, the median of the ratios of runs made side by side (same
    repetition). Both are runs of the row's case, or of `case` / `reference_case` when given."""

    variant: str
    reference: str
    pick: Pick
    case: str | None = None
    reference_case: str | None = None


@dataclass(frozen=True)
class Amount:
    """A target's figure that is no ratio: the median over the repetitions of `pick` of `variant`'s runs
    of `case`, in `unit`; with `summed`, their sum (a count that no repetition may hide: errors)."""

    variant: str
    case: str
    pick: Pick
    unit: str
    summed: bool = False


Cell = str | Figure | Ratio


@dataclass(frozen=True)
class Row:
    """One line of a table: its cells, filled from the runs of `case`; left out unless `shown_if` holds
    (every one of them, when a tuple)."""

    case: str
    cells: tuple[Cell, ...]
    shown_if: Ran | tuple[Ran, ...] | None = None


@dataclass(frozen=True)
class Section:
    """A heading, paragraphs, and a table; left out unless `shown_if` holds (None: unless a row is shown)."""

    heading: str
    paragraphs: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    shown_if: Ran | None = None


SIGNS = ("≥", "≤", "<")


@dataclass(frozen=True)
class Target:
    """A ratio (or an amount) with a bound, reported PASS or FAIL (not enforced); listed when every
    `shown_if` holds and every mode it names was measured."""

    label: str
    measure: Ratio | Amount
    sign: str  # "≥": the ratio must be at least the bound; "≤": at most; "<": under it
    bound: float
    shown_if: tuple[Ran, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.sign not in SIGNS:
            raise ValueError(f"a target's sign is one of {', '.join(SIGNS)}, not {self.sign!r}")


class _Figures:
    """The runs of one report (the profile's, rep -1, left out) and the modes it measured."""

    def __init__(self, measurements: list[Measurement], modes: list[str]) -> None:
        self.measurements = [m for m in measurements if m.rep >= 0]
        self.modes = modes

    def runs(self, case: str, variant: str) -> list[Measurement]:
        return [m for m in self.measurements if m.case == case and m.variant == variant]

    def values(self, case: str, variant: str, pick: Pick) -> dict[int, float]:
        return {m.rep: value for m in self.runs(case, variant) if (value := pick(m)) is not None}

    def median(self, case: str, variant: str, pick: Pick) -> float | None:
        values = list(self.values(case, variant, pick).values())
        return statistics.median(values) if values else None

    def total(self, case: str, variant: str, pick: Pick) -> float | None:
        values = list(self.values(case, variant, pick).values())
        return sum(values) if values else None

    def cell(self, case: str, variant: str, pick: Pick) -> str:
        values = list(self.values(case, variant, pick).values())
        if not values:
            return "—"
        middle = statistics.median(values)
        text = _number(middle)
        if len(values) > 1 and middle:
            text += f" ±{(max(values) - min(values)) / 2 / middle:.0%}"
        return text

    def ratio(self, case: str, variant: str, reference_case: str, reference: str, pick: Pick) -> float | None:
        """The median over repetitions of variant ÷ reference, each pair measured side by side."""
        mine = self.values(case, variant, pick)
        theirs = self.values(reference_case, reference, pick)
        ratios = [mine[rep] / theirs[rep] for rep in mine if rep in theirs and theirs[rep]]
        return statistics.median(ratios) if ratios else None

    def measured(self, variant: str) -> bool:
        """False for a storage mode (or its baseline) that this run did not measure; references are
        always measured."""
        mode = mode_of(variant)
        return mode not in MODES or mode in self.modes

    def holds(self, condition: Ran | tuple[Ran, ...] | None) -> bool:
        if condition is None:
            return True
        if isinstance(condition, tuple):
            return all(self.holds(each) for each in condition)
        variants = {
            ANY_MODE: self.modes,
            ANY_BASELINE: [baseline(mode) for mode in self.modes],
            ANY_WORKERS: [workers(mode) for mode in self.modes],
        }.get(condition.variant, [condition.variant])
        return any(self.runs(condition.case, variant) for variant in variants)

    def ratio_of(self, ratio: Ratio, case: str | None = None) -> float | None:
        own = ratio.case or case
        assert own is not None, "a ratio outside a row names its case"
        if not (self.measured(ratio.variant) and self.measured(ratio.reference)):
            return None
        return self.ratio(own, ratio.variant, ratio.reference_case or own, ratio.reference, ratio.pick)

    def text(self, cell: Cell, case: str) -> str:
        if isinstance(cell, str):
            return cell
        if isinstance(cell, Figure):
            return self.cell(case, cell.variant, cell.pick) if self.measured(cell.variant) else "—"
        return _ratio_text(self.ratio_of(cell, case))


def _value(m: Measurement) -> float | None:
    return m.value


def _p50(m: Measurement) -> float | None:
    return m.p50_ms


def _p95(m: Measurement) -> float | None:
    return None if m.result is None else m.result.p95_ms


def _warnings_per_ok(m: Measurement) -> float | None:
    if m.result is None or m.result.queue_warnings is None or not m.result.ok:
        return None
    return m.result.queue_warnings / m.result.ok


def _cpu_per_ok(m: Measurement) -> float | None:
    """The server process's CPU time per 2xx answer, in ms: less sensitive than rates to other load."""
    if m.result is None or m.result.server_cpu_s is None or not m.result.ok:
        return None
    return m.result.server_cpu_s / m.result.ok * 1000


def _fleet(read: Callable[[FleetResult], float]) -> Pick:
    """A pick of a fleet run's figure (None for any other run)."""

    def pick(m: Measurement) -> float | None:
        return read(m.result) if isinstance(m.result, FleetResult) else None

    return pick


def _lost(m: Measurement) -> float | None:
    return None if m.check is None else m.check.lost


def _generator_load(result: FleetResult) -> float:
    """The generator's CPU time over its sending window: 1.0 is a whole core (it could not keep up)."""
    return result.generator_cpu_s / result.duration_s if result.duration_s else math.nan


def _ratio_text(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def _verdict(ratio: float | None, sign: str, bound: float) -> str:
    if ratio is None:
        return "not measured"
    passed = {"≥": ratio >= bound, "≤": ratio <= bound, "<": ratio < bound}[sign]
    return "PASS" if passed else "FAIL"


def _same(mode: str) -> str:
    return mode


def against(
    case: str,
    workload: str,
    figure: str,
    pick: Pick,
    reference: str | None,
    shown_if: Ran | None,
    of: Callable[[str], str] = _same,
) -> Row:
    """The row of a table against a reference: workload | figure | the reference's figure | then, for each
    mode, its figure and its ratio to the reference. No reference: "—" in its cell and the ratios'. `of`
    gives a mode's variant (default the mode itself; `workers`: its server of several processes)."""
    cells: list[Cell] = [workload, figure, "—" if reference is None else Figure(reference, pick)]
    for mode in MODES:
        cells += [Figure(of(mode), pick), "—" if reference is None else Ratio(of(mode), reference, pick)]
    return Row(case, tuple(cells), shown_if)


def workers_rows(case: str, workload: str) -> tuple[Row, ...]:
    """The rows of a case served by each mode's `perfmon serve --workers N` against the ceiling (one
    process), and against the mode's one process, run by run."""
    ran = Ran(case, ANY_WORKERS)
    label = f"{workload} --workers {w.POST_WORKERS}"
    return (
        against(case, label, "200s per s", _value, "ceiling", ran, workers),
        against(case, label, "p50 ms", _p50, "ceiling", ran, workers),
        against(case, label, "server CPU ms per 200 (all its processes)", _cpu_per_ok, "ceiling", ran,
                workers),
        Row(case, (f"{label} ÷ {workload} (one process)", "200s per s", "",
                   Ratio(workers("file"), "file", _value), "", Ratio(workers("db"), "db", _value), ""),
            (ran, Ran(case))),
    )  # fmt: skip


def versus_baseline(case: str, workload: str, figure: str, pick: Pick) -> Row:
    """The row of the baseline table: workload | figure | then, for each mode, the baseline tree's
    figure, this tree's, and this ÷ baseline."""
    cells: list[Cell] = [workload, figure]
    for mode in MODES:
        cells += [Figure(baseline(mode), pick), Figure(mode, pick), Ratio(mode, baseline(mode), pick)]
    return Row(case, tuple(cells), Ran(case, ANY_BASELINE))


def per_mode(case: str, label: str, pick: Pick) -> Row:
    """A row of the history table: the label, then each mode's figure."""
    return Row(case, (label, *(Figure(mode, pick) for mode in MODES)))


def mode_ratio(case: str, reference_case: str, label: str, pick: Pick) -> Row:
    """A row of the history table: each mode's `case` ÷ its `reference_case`, side by side."""
    return Row(case, (label, *(Ratio(mode, mode, pick, reference_case=reference_case) for mode in MODES)))


# The conditions that most rows and targets share.
POST_RAN = Ran("post", "ceiling")
POST_METRICS_RAN = Ran("post_metrics", "ceiling")
POST_WORKERS_RAN = Ran("post", ANY_WORKERS)
FLEET_RAN = Ran("fleet")  # by either mode
BATCH_RAN = Ran("batch")  # by either mode
GET_100K_RAN = Ran("get_100k", "ceiling")
SESSIONS_RAN = Ran("sessions_100")  # by either mode
HISTORY_RAN = Ran("history_recent_long")  # by either mode

AGAINST_COLUMNS = ("workload", "figure", "ceiling", "file", "file ÷ ceiling", "db", "db ÷ ceiling")
GET_LABELS = (
    ("get_1k", "get: GET /cpu, session of 1,000 samples"),
    ("get_100k", "get: GET /cpu, session of 100,000 samples"),
    ("get_100k_step60", f"get: GET /cpu&step={w.GET_STEP}, session of 100,000 samples"),
)
SESSIONS_LABELS = (
    ("sessions_100", "100 sessions"),
    ("sessions_10000", "10,000 sessions"),
    ("sessions_10000_cold", "10,000 sessions, cold"),
)
BASELINE_GET_LABELS = (
    ("get_1k", "get: 1,000 samples"),
    ("get_100k", "get: 100,000 samples"),
    ("get_100k_step60", f"get: 100,000 samples, step={w.GET_STEP}"),
)
GROUP_GET = tuple(case for case, _ in GET_LABELS)
GROUP_SESSIONS = tuple(case for case, _ in SESSIONS_LABELS)

# fmt: off
SECTIONS = (
    Section(
        heading="Against the ceiling",
        paragraphs=(),
        columns=AGAINST_COLUMNS,
        rows=(
            # against(case, workload, figure, pick, reference, shown_if)
            against("post", f"post: 1 sample per POST /cpu, {w.POST_CONNECTIONS} conn., "
                    f"{w.POST_SESSIONS} sessions", "200s per s", _value, "ceiling", POST_RAN),
            against("post", "post", "p50 ms", _p50, "ceiling", POST_RAN),
            against("post", "post", "server CPU ms per 200", _cpu_per_ok, "ceiling", POST_RAN),
            against("post", "post", "waitress *Task queue depth* WARNINGs logged per 200", _warnings_per_ok,
                    "ceiling", POST_RAN),
            # Issue 14: the same posts to each mode's server of several processes, against the ceiling's one.
            *workers_rows("post", "post"),
            # Issue 12: the agent's post, 12 metrics in one sample; its ceiling parses the same bodies.
            against("post_metrics", f"post-metrics: {len(w.POST_METRICS)} metrics per POST /samples, "
                    f"{w.POST_CONNECTIONS} conn., {w.POST_SESSIONS} sessions", "200s per s", _value,
                    "ceiling", POST_METRICS_RAN),
            against("post_metrics", "post-metrics", "p50 ms", _p50, "ceiling", POST_METRICS_RAN),
            against("post_metrics", "post-metrics", "server CPU ms per 200", _cpu_per_ok, "ceiling",
                    POST_METRICS_RAN),
            against("post_metrics", "post-metrics", "waitress *Task queue depth* WARNINGs logged per 200",
                    _warnings_per_ok, "ceiling", POST_METRICS_RAN),
            # What the 11 more metrics cost: each variant's post-metrics ÷ its post, side by side.
            Row("post_metrics", ("post-metrics ÷ post", "200s per s",
                                 Ratio("ceiling", "ceiling", _value, reference_case="post"),
                                 Ratio("file", "file", _value, reference_case="post"), "",
                                 Ratio("db", "db", _value, reference_case="post"), ""),
                (POST_METRICS_RAN, POST_RAN)),
            *workers_rows("post_metrics", "post-metrics"),
            # A batch's ceiling is COPY, run with the db mode only: without it, its cells show "—".
            against("batch", f"batch: {w.BATCH_SIZE:,} samples per POST /cpu, {w.BATCH_CONNECTIONS} conn.",
                    f"samples stored per s (ceiling: COPY, {w.BATCH_CONNECTIONS} conn.)", _value, "copy",
                    BATCH_RAN),
            against("batch", "batch", "p50 ms per request", _p50, None, BATCH_RAN),
            against("batch", "batch", "server CPU ms per request", _cpu_per_ok, None, BATCH_RAN),
            *(against(case, f"{label}, {w.GET_CONNECTIONS} conn.", "p50 ms", _p50, "ceiling",
                      Ran(case, "ceiling")) for case, label in GET_LABELS),
            against("get_100k", "get: 100,000 samples", "server CPU ms per 200", _cpu_per_ok, "ceiling",
                    GET_100K_RAN),
        ),
    ),
    Section(
        heading=f"Sessions: single-sample posts, {w.SESSIONS_CONNECTIONS} conn., storage holding 100 or "
        "10,000 sessions",
        paragraphs=(
            f"Both posting to {w.SESSIONS_WORKING_SET} sessions (all of the 100; every 100th of the 10,000), "
            "so only the storage's size differs. *Cold*: posting to each of the 10,000 in turn on a fresh "
            "server, so most requests are a session's first (not in the server's session cache).",
        ),
        columns=("storage holds", "file p50 ms", "file 200s per s", "db p50 ms", "db 200s per s"),
        rows=(
            *(Row(case, (label, Figure("file", _p50), Figure("file", _value),
                         Figure("db", _p50), Figure("db", _value))) for case, label in SESSIONS_LABELS),
            Row("sessions_10000", ("p50 ratio 10,000 ÷ 100",
                                   Ratio("file", "file", _p50, reference_case="sessions_100"), "",
                                   Ratio("db", "db", _p50, reference_case="sessions_100"), "")),
        ),
        shown_if=SESSIONS_RAN,
    ),
    Section(
        heading="Register and login (Argon2id m=19 MiB, t=2, p=1)",
        paragraphs=(
            f"{w.AUTH_CONNECTIONS} conn. The ceiling is Argon2id hashes per second with the same parameters "
            "in-process, one thread per core, for as long as the other runs.",
        ),
        columns=("call", "figure", "Argon2id ceiling", "file", "file ÷ ceiling", "db", "db ÷ ceiling"),
        rows=(
            against("register", "POST /register", "200s per s", _value, "argon2", None),
            against("register", "POST /register", "p50 ms", _p50, None, None),
            against("login", "POST /login", "200s per s", _value, "argon2", None),
            against("login", "POST /login", "p50 ms", _p50, None, None),
        ),
        shown_if=Ran("register"),
    ),
    Section(
        heading="Fleet: agents posting once a second, open loop",
        paragraphs=(
            "`--only fleet`. On a freshly started server (`--fleet-workers`, one process by default): "
            f"first {w.FLEET_IDLE_REQUESTS} single posts, one at a time from one connection (the idle "
            "latency, timed from each send); then every agent, a keep-alive connection to a session and "
            f"host of its own, posts the agent's {len(w.POST_METRICS)} metrics (`POST /samples`, "
            "post-metrics' body) once a second at its own phase within the second, for `--fleet-seconds`, "
            "from a generator process (bench/fleet.py). Open loop: each request is timed from when it was "
            "due, so a slow server shows as latency; a request due before its connection's previous answer "
            "came is sent when it comes (a *late send*). Errors: non-2xx answers, socket errors, answers "
            f"that took over {TIMEOUT_SECONDS:g} s (the agent's timeout) and requests not sent by the end "
            "of the drain.",
        ),
        columns=("fleet", "file", "db"),
        rows=(
            per_mode("fleet", "agents (keep-alive connections)", _fleet(lambda r: r.connections)),
            per_mode("fleet", "seconds of load (requests per agent)",
                     _fleet(lambda r: r.schedule.requests if r.schedule else math.nan)),
            per_mode("fleet_idle", "idle server: p50 ms", _p50),
            per_mode("fleet", "p50 ms, from each request's due time", _p50),
            per_mode("fleet", "p99 ms", _fleet(lambda r: r.p99_ms)),
            per_mode("fleet", "p99 ms, each agent's first request left out",
                     _fleet(lambda r: r.p99_after_first_ms)),
            per_mode("fleet", "max ms", _fleet(lambda r: r.max_ms)),
            mode_ratio("fleet", "fleet_idle", "p99 ÷ idle p50", _value),
            per_mode("fleet", "requests sent", _fleet(lambda r: r.sent)),
            per_mode("fleet", "sent per s (achieved)", _fleet(lambda r: r.sent_per_second)),
            per_mode("fleet", "2xx", _fleet(lambda r: r.ok)),
            per_mode("fleet", "non-2xx", _fleet(lambda r: r.not_ok)),
            per_mode("fleet", "socket errors, timeouts, not sent",
                     _fleet(lambda r: sum(r.socket_errors.values()))),
            per_mode("fleet", "late sends", _fleet(lambda r: r.late_sends)),
            per_mode("fleet", "samples lost", _lost),
            per_mode("fleet", "server CPU ms per 200", _cpu_per_ok),
            per_mode("fleet", "generator: p99 ms from due to sent, connection free",
                     _fleet(lambda r: r.send_lag_p99_ms)),
            per_mode("fleet", "generator: CPU per s of sending (1 = a core)", _fleet(_generator_load)),
        ),
        shown_if=FLEET_RAN,
    ),
    Section(
        heading="History: a long session at 1 Hz beside one of its last 10 minutes",
        paragraphs=(
            f"`--only history`. Each storage holds a long session (`--history-days`, {w.HISTORY_DAYS} by "
            "default: agent-like readings, time.time() with jitter, cpu to one decimal, appended through the "
            f"adapter in batches of {w.HISTORY_BATCH:,} day by day, the storage's maintenance run at the "
            "start of each day and once more at the end, as a server's timer would have run it), a "
            f"session of its last {w.RECENT_SECONDS} s and one of its last {w.RAW_REFERENCE:,} samples, and "
            f"is read over HTTP by `GET /cpu` from {w.GET_CONNECTIONS} connections. *Whole history*: "
            "start_time..cur_time its first..last sample at the step the dashboard asks for on a "
            f"{w.PLOT_WIDTH}-pixel chart (a bucket per pixel, rounded up to a round step). *Readers*: "
            f"{w.HISTORY_READERS} connections reading the last 10 minutes and the whole history in turn, "
            "while one connection posts single samples to another session; its p95 is held against the "
            "same posts with no readers. RSS from /proc: the idle server's VmRSS when it has started, its "
            "VmHWM (peak) when the readers are done. Bytes on disk per stored sample: du's allocated blocks "
            "of the three sessions' files (file), pg_total_relation_size of every samples partition and the "
            "rollups table (db); *closed days*: the long session's raw files of the days before today "
            "(compressed by maintenance) and all its rollup files, per sample of those days.",
        ),
        columns=("history", "file", "db"),
        rows=(
            per_mode("history_samples", "samples in the long session", _value),
            per_mode("history_load_rate", "loading, maintenance daily: samples appended per s", _value),
            per_mode("history_maintain_s", "then the last maintenance pass, s", _value),
            per_mode("history_recent_long", "last 10 minutes of the long session: p50 ms", _p50),
            per_mode("history_recent_short", "last 10 minutes of the 10-minute session: p50 ms", _p50),
            mode_ratio("history_recent_long", "history_recent_short", "p50 ratio long ÷ 10-minute", _p50),
            per_mode("history_step", "the dashboard's step for the whole history, s", _value),
            per_mode("history_buckets", "buckets in the answer", _value),
            per_mode("history_whole", "whole history at that step: p50 ms", _p50),
            per_mode("history_raw_1k", f"{w.RAW_REFERENCE:,} raw samples: p50 ms", _p50),
            mode_ratio("history_whole", "history_raw_1k", f"p50 ratio whole ÷ {w.RAW_REFERENCE:,} raw", _p50),
            per_mode("history_readers", f"{w.HISTORY_READERS} readers: reads per s", _value),
            per_mode("history_readers", f"{w.HISTORY_READERS} readers: p50 ms", _p50),
            per_mode("history_rss_idle", "server RSS, idle, MB", _value),
            per_mode("history_rss_peak", "server peak RSS by the end of the readers, MB", _value),
            per_mode("history_rss_growth", "RSS growth, MB", _value),
            per_mode("history_post_idle", "single POST /cpu, no readers: p95 ms", _value),
            per_mode("history_post_busy", f"single POST /cpu, {w.HISTORY_READERS} readers: p95 ms", _value),
            mode_ratio("history_post_busy", "history_post_idle", "p95 ratio readers ÷ none", _value),
            per_mode("history_disk_raw", "bytes on disk per sample: raw", _value),
            per_mode("history_disk_rollups", "bytes on disk per sample: rollups", _value),
            per_mode("history_disk_total", "bytes on disk per sample: raw + rollups", _value),
            per_mode("history_disk_closed", "bytes on disk per sample, closed days: raw + rollups", _value),
        ),
        shown_if=HISTORY_RAN,
    ),
    Section(
        heading="Against the baseline: the same workloads served by the `--baseline` tree's perfmon",
        paragraphs=(
            "In the same repetitions, each against a storage of its own written by the baseline's own "
            "adapters (its db storages migrated by its own `perfmon init-db`). Ratios are this tree ÷ the "
            "baseline, run by run.",
        ),
        columns=("workload", "figure", "file baseline", "file", "file ÷ baseline", "db baseline", "db",
                 "db ÷ baseline"),
        rows=(
            versus_baseline("post", "post", "200s per s", _value),
            versus_baseline("post", "post", "server CPU ms per 200", _cpu_per_ok),
            versus_baseline("batch", "batch", "samples stored per s", _value),
            versus_baseline("batch", "batch", "server CPU ms per request", _cpu_per_ok),
            *(versus_baseline(case, label, "p50 ms", _p50) for case, label in BASELINE_GET_LABELS),
            *(versus_baseline(case, f"sessions: {label}", "p50 ms", _p50) for case, label in SESSIONS_LABELS),
        ),
        shown_if=Ran("post", ANY_BASELINE),
    ),
)

TARGETS = (
    # Target(label, Ratio(variant, reference, pick, case[, reference_case]), sign, bound, shown_if)
    Target("post file ÷ ceiling", Ratio("file", "ceiling", _value, "post"), "≥", 0.8, (POST_RAN,)),
    Target("post db ÷ ceiling", Ratio("db", "ceiling", _value, "post"), "≥", 0.6, (POST_RAN,)),
    # Issue 12: the agent's 12 metrics in one POST /samples.
    Target("post-metrics file ÷ ceiling", Ratio("file", "ceiling", _value, "post_metrics"), "≥", 0.7,
           (POST_METRICS_RAN,)),
    Target("post-metrics db ÷ ceiling", Ratio("db", "ceiling", _value, "post_metrics"), "≥", 0.5,
           (POST_METRICS_RAN,)),
    # Issue 14: two processes (`perfmon serve --workers 2`) against the ceiling's one.
    *(Target(f"post --workers {w.POST_WORKERS} {mode} ÷ ceiling (one process)",
             Ratio(workers(mode), "ceiling", _value, "post"), "≥", bound, (POST_WORKERS_RAN,))
      for mode, bound in (("file", 1.4), ("db", 1.0))),
    Target("batch db ÷ COPY", Ratio("db", "copy", _value, "batch"), "≥", 0.3,
           (BATCH_RAN, Ran("batch", "copy"))),
    Target("batch file ÷ batch db", Ratio("file", "db", _value, "batch"), "≥", 1.0, (BATCH_RAN,)),
    *(Target(f"get 100k p50 {mode} ÷ ceiling", Ratio(mode, "ceiling", _p50, "get_100k"), "≤", 2.0,
             (GET_100K_RAN,)) for mode in MODES),
    *(Target(f"sessions p50 {mode}: 10,000 ÷ 100", Ratio(mode, mode, _p50, "sessions_10000", "sessions_100"),
             "≤", 1.1, (SESSIONS_RAN,)) for mode in MODES),
    # Issue 14: 1,000 agents at 1 Hz, open loop: p99 under 10× an idle server's p50, nothing lost or failed.
    *(Target(f"fleet {mode}: p99 ÷ idle p50", Ratio(mode, mode, _value, "fleet", "fleet_idle"), "<", 10.0,
             (FLEET_RAN,)) for mode in MODES),
    *(Target(f"fleet {mode}: errors (non-2xx, socket errors, timeouts, not sent), all repetitions",
             Amount(mode, "fleet", _fleet(lambda r: r.errors), "errors", summed=True), "≤", 0, (FLEET_RAN,))
      for mode in MODES),
    *(Target(f"fleet {mode}: samples lost, all repetitions",
             Amount(mode, "fleet", _lost, "samples", summed=True), "≤", 0, (FLEET_RAN,)) for mode in MODES),
    # Issue 11: a long history costs reads what they return, not what is stored.
    *(Target(f"history last 10 min p50 {mode}: long ÷ 10-minute session",
             Ratio(mode, mode, _p50, "history_recent_long", "history_recent_short"), "≤", 1.5, (HISTORY_RAN,))
      for mode in MODES),
    *(Target(f"history whole p50 {mode}: dashboard's step ÷ {w.RAW_REFERENCE:,} raw",
             Ratio(mode, mode, _p50, "history_whole", "history_raw_1k"), "≤", 3.0, (HISTORY_RAN,))
      for mode in MODES),
    *(Target(f"history RSS growth {mode}, {w.HISTORY_READERS} readers",
             Amount(mode, "history_rss_growth", _value, "MB"), "≤", 100, (HISTORY_RAN,)) for mode in MODES),
    *(Target(f"history post p95 {mode}: {w.HISTORY_READERS} readers ÷ none",
             Ratio(mode, mode, _value, "history_post_busy", "history_post_idle"), "≤", 2.0, (HISTORY_RAN,))
      for mode in MODES),
    Target("history bytes per sample file, closed days, raw + rollups",
           Amount("file", "history_disk_closed", _value, "B"), "≤", 8, (HISTORY_RAN,)),
    # Issue 11: the existing figures do not regress by more than 10% (against the --baseline tree).
    *(Target(f"{case} {mode} ÷ baseline", Ratio(mode, baseline(mode), _value, case), "≥", 0.9,
             (Ran(case, baseline(mode)),)) for case in ("post", "batch") for mode in MODES),
    *(Target(f"{case} p50 {mode} ÷ baseline", Ratio(mode, baseline(mode), _p50, case), "≤", 1.1,
             (Ran(case, baseline(mode)),))
      for case in (*GROUP_GET, *GROUP_SESSIONS) for mode in MODES),
)
# fmt: on


def _table_line(cells: list[str]) -> str:
    """A markdown table line; an empty cell is written `| |`."""
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def _table(columns: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    return [_table_line(list(columns)), _table_line(["---"] * len(columns)), *map(_table_line, rows)]


def _section(f: _Figures, section: Section) -> list[str]:
    rows = [[f.text(cell, row.case) for cell in row.cells] for row in section.rows if f.holds(row.shown_if)]
    shown = f.holds(section.shown_if) if section.shown_if is not None else bool(rows)
    if not shown:
        return []
    paragraphs = [line for paragraph in section.paragraphs for line in (paragraph, "")]
    return [f"## {section.heading}", "", *paragraphs, *_table(section.columns, rows), ""]


def _target_row(f: _Figures, target: Target) -> list[str] | None:
    """The target's line: label, bound, measured, verdict; None when it is not to be listed."""
    measure = target.measure
    references = (measure.reference,) if isinstance(measure, Ratio) else ()
    if not all(f.measured(variant) for variant in (measure.variant, *references)):
        return None
    if not all(f.holds(condition) for condition in target.shown_if):
        return None
    if isinstance(measure, Ratio):
        measured = f.ratio_of(measure)
        bound, text = f"{target.bound}×", _ratio_text(measured)
    else:
        summary = f.total if measure.summed else f.median
        measured = summary(measure.case, measure.variant, measure.pick)
        bound = f"{_number(target.bound)} {measure.unit}"
        text = "—" if measured is None else f"{_number(measured)} {measure.unit}"
    return [target.label, f"{target.sign} {bound}", text, _verdict(measured, target.sign, target.bound)]


def _targets(f: _Figures) -> list[str]:
    rows = [row for target in TARGETS if (row := _target_row(f, target)) is not None]
    if not rows:
        return []
    return ["## Targets", "", *_table(("target", "bound", "measured", "verdict"), rows), ""]


INTEGRITY_COLUMNS = (
    "workload",
    "variant",
    "2xx",
    "acknowledged",
    "stored",
    "lost",
    "stored, unacknowledged",
    "non-2xx",
    "socket errors",
    "unexpected",
    "verdict",
)


def _integrity(f: _Figures) -> tuple[list[str], bool]:
    """One row per workload and variant that wrk drove, all repetitions summed; and whether all are ok."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in f.measurements:
        if m.result is not None:
            groups.setdefault((m.case, m.variant), []).append(m)
    healthy = True
    rows = []
    for (case, variant), runs in groups.items():
        results = [m.result for m in runs if m.result is not None]
        statuses: dict[int, int] = {}
        for result in results:
            for status, count in result.statuses.items():
                if not 200 <= status < 300:
                    statuses[status] = statuses.get(status, 0) + count
        not_ok = sum(result.not_ok for result in results)
        checks = [m.check for m in runs if m.check is not None]
        lost = sum(c.lost for c in checks)
        unexpected = sum(c.unexpected for c in checks)
        good = not_ok == 0 and lost == 0 and unexpected == 0
        healthy = healthy and good
        if checks:
            storage = [
                str(sum(c.acknowledged for c in checks)),
                str(sum(c.stored for c in checks)),
                str(lost),
                str(sum(c.stored_unacknowledged for c in checks)),
            ]
        else:
            storage = ["—", "—", "— (reads)" if case.startswith(("get", "history")) else "— (ceiling)", "—"]
        rows.append(
            [
                case,
                variant,
                str(sum(result.ok for result in results)),
                *storage,
                f"{not_ok} {statuses}" if not_ok else "0",
                str(sum(sum(result.socket_errors.values()) for result in results)),
                str(unexpected) if checks else "—",
                "ok" if good else "FAILED",
            ]
        )
    lines = [
        "## Integrity (all repetitions together)",
        "",
        "Counted in samples for post, post-metrics (a sample: 12 metrics at one time), batch and sessions, "
        "users for register, sessions for login. *Stored, "
        "unacknowledged*: requests that were in flight when wrk stopped (it does not wait for their "
        "answers), stored by the server; at most one request per connection.",
        "",
        *_fleet_integrity(f),
        *_table(INTEGRITY_COLUMNS, rows),
        "",
    ]
    return lines, healthy


def _fleet_integrity(f: _Figures) -> list[str]:
    """What the integrity table's fleet rows count, when the fleet ran."""
    if not f.holds(FLEET_RAN):
        return []
    return [
        "fleet and fleet_idle: samples (12 metrics at one time), each acknowledged one looked for by its "
        "time, which names its agent and request. *Stored, unacknowledged*: requests whose answer did "
        "not come (timeouts, socket errors); *socket errors* counts those and the requests not sent.",
        "",
    ]


def render(
    measurements: list[Measurement], arguments: argparse.Namespace, machine: dict[str, str], command: str
) -> tuple[str, bool]:
    """The markdown report, and whether every run kept every acknowledged write and answered 2xx."""
    f = _Figures(measurements, arguments.modes)
    lines = [
        "# perfmon benchmark results",
        "",
        f"`{command}`: {arguments.reps} interleaved repetition(s) of {arguments.seconds} s runs, "
        f"{arguments.threads} waitress threads per server. Figures are medians of the repetitions "
        "(± half their range); ratios are medians of the per-repetition ratios of runs made side by side.",
        "",
        *_table(("machine", ""), [[key, value] for key, value in machine.items()]),
        "",
    ]
    for section in SECTIONS:
        lines += _section(f, section)
    lines += _targets(f)
    integrity, healthy = _integrity(f)
    lines += integrity
    lines.append(
        "Verdict: "
        + (
            "no acknowledged write lost, every answer 2xx."
            if healthy
            else "**FAILED**: data lost, or non-2xx answers."
        )
    )
    return "\n".join(lines) + "\n", healthy
