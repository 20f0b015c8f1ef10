"""The results table: medians of the repetitions, ratios to the ceiling, targets, and the data checks."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from . import workload as w
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
    variant: str  # "ceiling", "file", "db", "copy" or "argon2"
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


class _Figures:
    def __init__(self, measurements: list[Measurement]) -> None:
        self.measurements = [m for m in measurements if m.rep >= 0]

    def runs(self, case: str, variant: str) -> list[Measurement]:
        return [m for m in self.measurements if m.case == case and m.variant == variant]

    def values(
        self, case: str, variant: str, pick: Callable[[Measurement], float | None]
    ) -> dict[int, float]:
        return {m.rep: value for m in self.runs(case, variant) if (value := pick(m)) is not None}

    def median(self, case: str, variant: str, pick: Callable[[Measurement], float | None]) -> float | None:
        values = list(self.values(case, variant, pick).values())
        return statistics.median(values) if values else None

    def cell(self, case: str, variant: str, pick: Callable[[Measurement], float | None]) -> str:
        values = list(self.values(case, variant, pick).values())
        if not values:
            return "—"
        middle = statistics.median(values)
        text = _number(middle)
        if len(values) > 1 and middle:
            text += f" ±{(max(values) - min(values)) / 2 / middle:.0%}"
        return text

    def ratio(
        self,
        case: str,
        variant: str,
        reference_case: str,
        reference: str,
        pick: Callable[[Measurement], float | None],
    ) -> float | None:
        """The median over repetitions of variant ÷ reference, each pair measured side by side."""
        mine = self.values(case, variant, pick)
        theirs = self.values(reference_case, reference, pick)
        ratios = [mine[rep] / theirs[rep] for rep in mine if rep in theirs and theirs[rep]]
        return statistics.median(ratios) if ratios else None


def _value(m: Measurement) -> float | None:
    return m.value


def _p50(m: Measurement) -> float | None:
    return m.p50_ms


def _warnings_per_ok(m: Measurement) -> float | None:
    if m.result is None or m.result.queue_warnings is None or not m.result.ok:
        return None
    return m.result.queue_warnings / m.result.ok


def _cpu_per_ok(m: Measurement) -> float | None:
    """The server process's CPU time per 2xx answer, in ms: less sensitive than rates to other load."""
    if m.result is None or m.result.server_cpu_s is None or not m.result.ok:
        return None
    return m.result.server_cpu_s / m.result.ok * 1000


def _ratio_text(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def _verdict(ratio: float | None, bound: float, at_least: bool) -> str:
    if ratio is None:
        return "not measured"
    passed = ratio >= bound if at_least else ratio <= bound
    return "PASS" if passed else "FAIL"


def render(
    measurements: list[Measurement], arguments: argparse.Namespace, machine: dict[str, str], command: str
) -> tuple[str, bool]:
    """The markdown report, and whether every run kept every acknowledged write and answered 2xx."""
    f = _Figures(measurements)
    modes = arguments.modes
    lines = [
        "# perfmon benchmark results",
        "",
        f"`{command}`: {arguments.reps} interleaved repetition(s) of {arguments.seconds} s runs, "
        f"{arguments.threads} waitress threads per server. Figures are medians of the repetitions "
        "(± half their range); ratios are medians of the per-repetition ratios of runs made side by side.",
        "",
        "| machine | |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in machine.items()],
        "",
    ]
    targets: list[str] = []

    def mode_columns(case: str, reference_case: str, reference: str, pick: Callable) -> list[str]:
        cells = []
        for mode in ("file", "db"):
            if mode in modes:
                cells += [
                    f.cell(case, mode, pick),
                    _ratio_text(f.ratio(case, mode, reference_case, reference, pick)),
                ]
            else:
                cells += ["—", "—"]
        return cells

    def target(label: str, ratio: float | None, bound: float, at_least: bool) -> None:
        sign = "≥" if at_least else "≤"
        targets.append(
            f"| {label} | {sign} {bound}× | {_ratio_text(ratio)} | {_verdict(ratio, bound, at_least)} |"
        )

    # Throughput and latency against the ceiling.
    table = [
        "## Against the ceiling",
        "",
        "| workload | figure | ceiling | file | file ÷ ceiling | db | db ÷ ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    if f.runs("post", "ceiling"):
        table.append(
            f"| post: 1 sample per POST /cpu, {w.POST_CONNECTIONS} conn., {w.POST_SESSIONS} sessions "
            f"| 200s per s | {f.cell('post', 'ceiling', _value)} | "
            + " | ".join(mode_columns("post", "post", "ceiling", _value))
            + " |"
        )
        table.append(
            f"| post | p50 ms | {f.cell('post', 'ceiling', _p50)} | "
            + " | ".join(mode_columns("post", "post", "ceiling", _p50))
            + " |"
        )
        table.append(
            f"| post | server CPU ms per 200 | {f.cell('post', 'ceiling', _cpu_per_ok)} | "
            + " | ".join(mode_columns("post", "post", "ceiling", _cpu_per_ok))
            + " |"
        )
        table.append(
            "| post | waitress *Task queue depth* WARNINGs logged per 200 | "
            + f"{f.cell('post', 'ceiling', _warnings_per_ok)} | "
            + " | ".join(mode_columns("post", "post", "ceiling", _warnings_per_ok))
            + " |"
        )
        for mode, bound in (("file", 0.8), ("db", 0.6)):
            if mode in modes:
                target(
                    f"post {mode} ÷ ceiling", f.ratio("post", mode, "post", "ceiling", _value), bound, True
                )
    if any(f.runs("batch", mode) for mode in modes):
        reference = "copy" if f.runs("batch", "copy") else None
        cells = (
            mode_columns("batch", "batch", reference, _value)
            if reference
            else [f.cell("batch", "file", _value), "—", f.cell("batch", "db", _value), "—"]
        )
        table.append(
            f"| batch: {w.BATCH_SIZE:,} samples per POST /cpu, {w.BATCH_CONNECTIONS} conn. "
            f"| samples stored per s (ceiling: COPY, {w.BATCH_CONNECTIONS} conn.) "
            f"| {f.cell('batch', 'copy', _value)} | " + " | ".join(cells) + " |"
        )
        table.append(
            "| batch | p50 ms per request | — | "
            + f"{f.cell('batch', 'file', _p50)} | — | {f.cell('batch', 'db', _p50)} | — |"
        )
        table.append(
            "| batch | server CPU ms per request | — | "
            + f"{f.cell('batch', 'file', _cpu_per_ok)} | — | {f.cell('batch', 'db', _cpu_per_ok)} | — |"
        )
        if reference and "db" in modes:
            target("batch db ÷ COPY", f.ratio("batch", "db", "batch", "copy", _value), 0.3, True)
        if "file" in modes and "db" in modes:
            target("batch file ÷ batch db", f.ratio("batch", "file", "batch", "db", _value), 1.0, True)
    for case, label in (
        ("get_1k", "get: GET /cpu, session of 1,000 samples"),
        ("get_100k", "get: GET /cpu, session of 100,000 samples"),
        ("get_100k_step60", f"get: GET /cpu&step={w.GET_STEP}, session of 100,000 samples"),
    ):
        if f.runs(case, "ceiling"):
            table.append(
                f"| {label}, {w.GET_CONNECTIONS} conn. | p50 ms | {f.cell(case, 'ceiling', _p50)} | "
                + " | ".join(mode_columns(case, case, "ceiling", _p50))
                + " |"
            )
    if f.runs("get_100k", "ceiling"):
        table.append(
            "| get: 100,000 samples | server CPU ms per 200 | "
            + f"{f.cell('get_100k', 'ceiling', _cpu_per_ok)} | "
            + " | ".join(mode_columns("get_100k", "get_100k", "ceiling", _cpu_per_ok))
            + " |"
        )
        for mode in modes:
            target(
                f"get 100k p50 {mode} ÷ ceiling",
                f.ratio("get_100k", mode, "get_100k", "ceiling", _p50),
                2.0,
                False,
            )
    if len(table) > 4:
        lines += [*table, ""]

    # Sessions: the same working set, a small and a large storage.
    if any(f.runs("sessions_100", mode) for mode in modes):
        lines += [
            f"## Sessions: single-sample posts, {w.SESSIONS_CONNECTIONS} conn., storage holding 100 or "
            "10,000 sessions",
            "",
            f"Both posting to {w.SESSIONS_WORKING_SET} sessions (all of the 100; every 100th of the "
            "10,000), so only the storage's size differs. *Cold*: posting to each of the 10,000 in turn "
            "on a fresh server, so most requests are a session's first (not in the server's session cache).",
            "",
            "| storage holds | file p50 ms | file 200s per s | db p50 ms | db 200s per s |",
            "| --- | --- | --- | --- | --- |",
        ]
        for case, label in (
            ("sessions_100", "100 sessions"),
            ("sessions_10000", "10,000 sessions"),
            ("sessions_10000_cold", "10,000 sessions, cold"),
        ):
            cells = [f"{f.cell(case, mode, _p50)} | {f.cell(case, mode, _value)}" for mode in ("file", "db")]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        ratios = {
            mode: f.ratio("sessions_10000", mode, "sessions_100", mode, _p50) for mode in ("file", "db")
        }
        lines += [
            f"| p50 ratio 10,000 ÷ 100 | {_ratio_text(ratios['file'])} | | {_ratio_text(ratios['db'])} | |",
            "",
        ]
        for mode in modes:
            target(f"sessions p50 {mode}: 10,000 ÷ 100", ratios[mode], 1.1, False)

    # Register and login.
    if any(f.runs("register", mode) for mode in modes):
        lines += [
            "## Register and login (Argon2id m=19 MiB, t=2, p=1)",
            "",
            f"{w.AUTH_CONNECTIONS} conn. The ceiling is Argon2id hashes per second with the same parameters "
            "in-process, one thread per core, for as long as the other runs.",
            "",
            "| call | figure | Argon2id ceiling | file | file ÷ ceiling | db | db ÷ ceiling |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for case in ("register", "login"):
            lines.append(
                f"| POST /{case} | 200s per s | {f.cell(case, 'argon2', _value)} | "
                + " | ".join(mode_columns(case, case, "argon2", _value))
                + " |"
            )
            lines.append(
                f"| POST /{case} | p50 ms | — | {f.cell(case, 'file', _p50)} | — "
                + f"| {f.cell(case, 'db', _p50)} | — |"
            )
        lines.append("")

    if targets:
        lines += ["## Targets", "", "| target | bound | measured | verdict |", "| --- | --- | --- | --- |"]
        lines += [*targets, ""]

    # Integrity: every acknowledged write stored, every answer 2xx.
    healthy = True
    integrity = [
        "## Integrity (all repetitions together)",
        "",
        "Counted in samples for post, batch and sessions, users for register, sessions for login. *Stored, "
        "unacknowledged*: requests that were in flight when wrk stopped (it does not wait for their "
        "answers), stored by the server; at most one request per connection.",
        "",
        "| workload | variant | 2xx | acknowledged | stored | lost | stored, unacknowledged | non-2xx "
        "| socket errors | unexpected | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in f.measurements:
        if m.result is not None:
            groups.setdefault((m.case, m.variant), []).append(m)
    for (case, variant), runs in groups.items():
        ok = sum(m.result.ok for m in runs if m.result)
        not_ok = sum(m.result.not_ok for m in runs if m.result)
        statuses: dict[int, int] = {}
        for m in runs:
            if m.result:
                for status, count in m.result.statuses.items():
                    if not 200 <= status < 300:
                        statuses[status] = statuses.get(status, 0) + count
        socket = sum(sum(m.result.socket_errors.values()) for m in runs if m.result)
        checks = [m.check for m in runs if m.check is not None]
        lost = sum(c.lost for c in checks)
        unexpected = sum(c.unexpected for c in checks)
        good = not_ok == 0 and lost == 0 and unexpected == 0
        healthy = healthy and good
        not_ok_text = f"{not_ok} {statuses}" if not_ok else "0"
        if checks:
            storage = [
                str(sum(c.acknowledged for c in checks)),
                str(sum(c.stored for c in checks)),
                str(lost),
                str(sum(c.stored_unacknowledged for c in checks)),
            ]
        else:
            storage = ["—", "—", "— (reads)" if case.startswith("get") else "— (ceiling)", "—"]
        integrity.append(
            f"| {case} | {variant} | {ok} | "
            + " | ".join(storage)
            + f" | {not_ok_text} | {socket} | {unexpected if checks else '—'} "
            + f"| {'ok' if good else 'FAILED'} |"
        )
    lines += [*integrity, ""]
    lines.append(
        "Verdict: "
        + (
            "no acknowledged write lost, every answer 2xx."
            if healthy
            else "**FAILED**: data lost, or non-2xx answers."
        )
    )
    return "\n".join(lines) + "\n", healthy
