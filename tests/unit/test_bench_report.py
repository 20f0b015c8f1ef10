"""The benchmark's report (bench/report.py): what a reader of bench/results.md sees for given runs.

The runs are made up, with round figures, so that each cell can be worked out by hand: a figure is the
median of the repetitions ± half their range, a ratio the median of the per-repetition ratios.
"""

from __future__ import annotations

import argparse

import pytest

from bench.processes import WrkResult
from bench.report import Check, Measurement, Ratio, Target, render

MACHINE = {"nproc": "2", "CPU": "test"}


def _run(
    case: str,
    variant: str,
    rep: int,
    value: float,
    *,
    p50: float | None = None,
    ok: int = 1000,
    not_ok: dict[int, int] | None = None,
    cpu_s: float | None = 1.0,
    lost: int = 0,
    checked: bool = True,
) -> Measurement:
    """A wrk run: `ok` 200s; a write (checked) run's check stores them all unless `lost`."""
    result = WrkResult(
        duration_s=10.0,
        requests=ok + sum((not_ok or {}).values()),
        bytes_received=0,
        statuses={200: ok, **(not_ok or {})},
        socket_errors={"connect": 0, "read": 0, "write": 0, "timeout": 0},
        p50_ms=p50 if p50 is not None else value,
        p90_ms=0.0,
        p99_ms=0.0,
        sent_by_thread={0: ok // 2, 1: ok - ok // 2},
        acked=[],
        server_cpu_s=cpu_s,
        queue_warnings=0,
    )
    check = None
    if checked:
        check = Check(
            acknowledged=ok,
            stored=ok + 2 - lost,
            lost=lost,
            stored_unacknowledged=2,
            in_flight=2,
            unexpected=0,
        )
    return Measurement(case, variant, rep, value, result.p50_ms, check, result)


def _reference(case: str, variant: str, rep: int, value: float) -> Measurement:
    """A run without wrk: COPY or Argon2id, a rate."""
    return Measurement(case, variant, rep, value)


def _render(measurements: list[Measurement], modes: list[str], reps: int = 2) -> tuple[str, bool]:
    arguments = argparse.Namespace(modes=modes, reps=reps, seconds=10, threads=8)
    return render(measurements, arguments, MACHINE, "python -m bench --test")


def _post_runs() -> list[Measurement]:
    return [
        _run("post", "ceiling", 0, 1000.0, p50=2.0, checked=False),
        _run("post", "ceiling", 1, 1200.0, p50=2.0, checked=False),
        _run("post", "file", 0, 500.0, p50=4.0),
        _run("post", "file", 1, 700.0, p50=4.4),
    ]


def test_a_mode_against_the_ceiling_shows_median_spread_and_the_side_by_side_ratio() -> None:
    table, _ = _render(_post_runs(), ["file"])

    # ceiling 1,000 and 1,200: 1,100 ± 100 (9%); file 500 and 700: 600 ± 100 (17%);
    # ratios 0.5 and 0.583 in the same repetitions: 0.54. db was not measured: "—".
    assert (
        "| post: 1 sample per POST /cpu, 16 conn., 64 sessions | 200s per s | 1,100 ±9% | 600 ±17% | 0.54× "
        "| — | — |"
    ) in table.splitlines()
    assert "| post | p50 ms | 2 ±0% | 4.2 ±5% | 2.10× | — | — |" in table.splitlines()


def test_a_target_is_reported_against_its_bound_only_for_the_modes_measured() -> None:
    table, _ = _render(_post_runs(), ["file"])

    assert "| post file ÷ ceiling | ≥ 0.8× | 0.54× | FAIL |" in table.splitlines()
    assert "post db ÷ ceiling" not in table


def test_sections_without_runs_are_left_out() -> None:
    table, _ = _render(_post_runs(), ["file"])

    assert "## Against the ceiling" in table
    assert "| batch" not in table
    assert "## Sessions" not in table
    assert "## Register and login" not in table


def test_batches_without_the_db_mode_have_no_copy_ceiling() -> None:
    runs = [_run("batch", "file", 0, 40_000.0, p50=8.0), _run("batch", "file", 1, 40_000.0, p50=8.0)]

    table, _ = _render(runs, ["file"])

    assert (
        "| batch: 1,000 samples per POST /cpu, 4 conn. | samples stored per s (ceiling: COPY, 4 conn.) "
        "| — | 40,000 ±0% | — | — | — |"
    ) in table.splitlines()
    assert "batch db ÷ COPY" not in table
    assert "batch file ÷ batch db" not in table


def test_the_sessions_ratio_compares_the_large_storage_with_the_small_one_per_mode() -> None:
    runs = [
        _run("sessions_100", "file", 0, 4000.0, p50=4.0),
        _run("sessions_10000", "file", 0, 3900.0, p50=4.2),
        _run("sessions_10000_cold", "file", 0, 3500.0, p50=5.0),
    ]

    table, _ = _render(runs, ["file"], reps=1)

    assert "| 10,000 sessions | 4.2 | 3,900 | — | — |" in table.splitlines()
    assert "| p50 ratio 10,000 ÷ 100 | 1.05× | | — | |" in table.splitlines()
    assert "| sessions p50 file: 10,000 ÷ 100 | ≤ 1.1× | 1.05× | PASS |" in table.splitlines()


def test_a_lost_write_or_a_non_2xx_answer_fails_the_report() -> None:
    runs = [
        *_post_runs(),
        _run("batch", "file", 0, 40_000.0, lost=1000),
        _run("login", "file", 0, 90.0, not_ok={503: 3}),
    ]

    table, healthy = _render(runs, ["file"])

    assert not healthy
    lines = table.splitlines()
    assert "| post | file | 2000 | 2000 | 2004 | 0 | 4 | 0 | 0 | 0 | ok |" in lines
    assert "| batch | file | 1000 | 1000 | 2 | 1000 | 2 | 0 | 0 | 0 | FAILED |" in lines
    assert "| login | file | 1000 | 1000 | 1002 | 0 | 2 | 3 {503: 3} | 0 | 0 | FAILED |" in lines
    assert lines[-1] == "Verdict: **FAILED**: data lost, or non-2xx answers."


def _post_metrics_runs() -> list[Measurement]:
    """Two repetitions of post and post-metrics against the ceiling, in both modes."""
    runs = _post_runs()
    runs += [
        _run("post", "db", 0, 400.0, p50=5.0),
        _run("post", "db", 1, 480.0, p50=5.0),
        _run("post_metrics", "ceiling", 0, 900.0, p50=2.2, checked=False),
        _run("post_metrics", "ceiling", 1, 1000.0, p50=2.4, checked=False),
        _run("post_metrics", "file", 0, 630.0, p50=3.0),
        _run("post_metrics", "file", 1, 750.0, p50=3.4),
        _run("post_metrics", "db", 0, 450.0, p50=4.0),
        _run("post_metrics", "db", 1, 480.0, p50=4.0),
    ]
    return runs


def test_post_metrics_is_held_against_the_ceiling_and_beside_post() -> None:
    table, healthy = _render(_post_metrics_runs(), ["file", "db"])

    assert healthy
    lines = table.splitlines()
    # file 630 and 750 against 900 and 1,000: ratios 0.7 and 0.75, 0.725; db 0.5 and 0.48, 0.49.
    assert (
        "| post-metrics: 12 metrics per POST /samples, 16 conn., 64 sessions | 200s per s | 950 ±5% "
        "| 690 ±9% | 0.72× | 465 ±3% | 0.49× |"
    ) in lines
    assert "| post-metrics | p50 ms | 2.3 ±4% | 3.2 ±6% | 1.39× | 4 ±0% | 1.74× |" in lines
    # post-metrics ÷ post, run by run: ceiling 0.9 and 0.83; file 1.26 and 1.07; db 1.125 and 1.0.
    assert "| post-metrics ÷ post | 200s per s | 0.87× | 1.17× | | 1.06× | |" in lines
    assert "| post-metrics file ÷ ceiling | ≥ 0.7× | 0.72× | PASS |" in lines
    assert "| post-metrics db ÷ ceiling | ≥ 0.5× | 0.49× | FAIL |" in lines
    assert "| post_metrics | file | 2000 | 2000 | 2004 | 0 | 4 | 0 | 0 | 0 | ok |" in lines
    assert "| post_metrics | ceiling | 2000 | — | — | — (ceiling) | — | 0 | 0 | — | ok |" in lines


def test_post_metrics_alone_has_no_ratio_to_post() -> None:
    runs = [m for m in _post_metrics_runs() if m.case == "post_metrics"]

    table, _ = _render(runs, ["file", "db"])

    assert "| post-metrics: 12 metrics per POST /samples" in table
    assert "post-metrics ÷ post" not in table
    assert "| post file ÷ ceiling" not in table


def test_a_lost_post_metrics_sample_fails_the_report() -> None:
    runs = [*_post_metrics_runs(), _run("post_metrics", "db", 2, 450.0, lost=1)]

    table, healthy = _render(runs, ["file", "db"], reps=3)

    assert not healthy
    assert "| post_metrics | db | 3000 | 3000 | 3005 | 1 | 6 | 0 | 0 | 0 | FAILED |" in table.splitlines()


def test_the_profile_runs_are_left_out_of_the_figures() -> None:
    runs = [*_post_runs(), _run("post", "file", -1, 99_999.0)]

    table, healthy = _render(runs, ["file"])

    assert healthy
    assert "99,999" not in table
    assert "| post | file | 2000 |" in table  # the integrity row counts the two repetitions only


def test_a_target_sign_is_at_least_or_at_most() -> None:
    with pytest.raises(ValueError, match="sign"):
        Target("x", Ratio("file", "ceiling", lambda m: m.value, "post"), ">=", 1.0)


def _every_workload() -> list[Measurement]:
    """One repetition of every workload in both modes, each with its reference run."""
    runs = [
        _run("post", "ceiling", 0, 8000.0, p50=2.0, cpu_s=1.1, checked=False),
        _run("post", "file", 0, 4000.0, p50=4.0, cpu_s=2.9),
        _run("post", "db", 0, 2800.0, p50=5.3, cpu_s=3.0),
    ]
    for case, ceiling, file, db in (
        ("get_1k", 0.5, 1.0, 2.0),
        ("get_100k", 40.0, 80.0, 120.0),
        ("get_100k_step60", 1.0, 80.0, 30.0),
    ):
        runs += [
            _run(case, "ceiling", 0, ceiling, checked=False),
            _run(case, "file", 0, file, checked=False),
            _run(case, "db", 0, db, checked=False),
        ]
    runs += [
        _reference("batch", "copy", 0, 400_000.0),
        _run("batch", "file", 0, 400_000.0, p50=8.0, cpu_s=20.0),
        _run("batch", "db", 0, 120_000.0, p50=30.0, cpu_s=30.0),
    ]
    for case, file, db in (
        ("sessions_100", 4.0, 5.0),
        ("sessions_10000", 4.0, 5.5),
        ("sessions_10000_cold", 4.5, 8.0),
    ):
        runs += [_run(case, "file", 0, 1000 / file, p50=file), _run(case, "db", 0, 1000 / db, p50=db)]
    for case in ("register", "login"):
        runs += [
            _reference(case, "argon2", 0, 110.0),
            _run(case, "file", 0, 97.0, p50=42.0),
            _run(case, "db", 0, 88.0, p50=45.0),
        ]
    return runs


# Rendered by the report as it was before its tables became data (commit 7b34916); since issue 12, the
# integrity paragraph names post-metrics' unit too. No post-metrics run: none of its rows or targets.
EVERY_WORKLOAD_REPORT = """\
# perfmon benchmark results

`python -m bench --test`: 1 interleaved repetition(s) of 10 s runs, 8 waitress threads per server. Figures are medians of the repetitions (± half their range); ratios are medians of the per-repetition ratios of runs made side by side.

| machine | |
| --- | --- |
| nproc | 2 |
| CPU | test |

## Against the ceiling

| workload | figure | ceiling | file | file ÷ ceiling | db | db ÷ ceiling |
| --- | --- | --- | --- | --- | --- | --- |
| post: 1 sample per POST /cpu, 16 conn., 64 sessions | 200s per s | 8,000 | 4,000 | 0.50× | 2,800 | 0.35× |
| post | p50 ms | 2 | 4 | 2.00× | 5.3 | 2.65× |
| post | server CPU ms per 200 | 1.1 | 2.9 | 2.64× | 3 | 2.73× |
| post | waitress *Task queue depth* WARNINGs logged per 200 | 0 | 0 | — | 0 | — |
| batch: 1,000 samples per POST /cpu, 4 conn. | samples stored per s (ceiling: COPY, 4 conn.) | 400,000 | 400,000 | 1.00× | 120,000 | 0.30× |
| batch | p50 ms per request | — | 8 | — | 30.0 | — |
| batch | server CPU ms per request | — | 20.0 | — | 30.0 | — |
| get: GET /cpu, session of 1,000 samples, 2 conn. | p50 ms | 0.5 | 1 | 2.00× | 2 | 4.00× |
| get: GET /cpu, session of 100,000 samples, 2 conn. | p50 ms | 40.0 | 80.0 | 2.00× | 120 | 3.00× |
| get: GET /cpu&step=60, session of 100,000 samples, 2 conn. | p50 ms | 1 | 80.0 | 80.00× | 30.0 | 30.00× |
| get: 100,000 samples | server CPU ms per 200 | 1 | 1 | 1.00× | 1 | 1.00× |

## Sessions: single-sample posts, 16 conn., storage holding 100 or 10,000 sessions

Both posting to 100 sessions (all of the 100; every 100th of the 10,000), so only the storage's size differs. *Cold*: posting to each of the 10,000 in turn on a fresh server, so most requests are a session's first (not in the server's session cache).

| storage holds | file p50 ms | file 200s per s | db p50 ms | db 200s per s |
| --- | --- | --- | --- | --- |
| 100 sessions | 4 | 250 | 5 | 200 |
| 10,000 sessions | 4 | 250 | 5.5 | 182 |
| 10,000 sessions, cold | 4.5 | 222 | 8 | 125 |
| p50 ratio 10,000 ÷ 100 | 1.00× | | 1.10× | |

## Register and login (Argon2id m=19 MiB, t=2, p=1)

4 conn. The ceiling is Argon2id hashes per second with the same parameters in-process, one thread per core, for as long as the other runs.

| call | figure | Argon2id ceiling | file | file ÷ ceiling | db | db ÷ ceiling |
| --- | --- | --- | --- | --- | --- | --- |
| POST /register | 200s per s | 110 | 97.0 | 0.88× | 88.0 | 0.80× |
| POST /register | p50 ms | — | 42.0 | — | 45.0 | — |
| POST /login | 200s per s | 110 | 97.0 | 0.88× | 88.0 | 0.80× |
| POST /login | p50 ms | — | 42.0 | — | 45.0 | — |

## Targets

| target | bound | measured | verdict |
| --- | --- | --- | --- |
| post file ÷ ceiling | ≥ 0.8× | 0.50× | FAIL |
| post db ÷ ceiling | ≥ 0.6× | 0.35× | FAIL |
| batch db ÷ COPY | ≥ 0.3× | 0.30× | PASS |
| batch file ÷ batch db | ≥ 1.0× | 3.33× | PASS |
| get 100k p50 file ÷ ceiling | ≤ 2.0× | 2.00× | PASS |
| get 100k p50 db ÷ ceiling | ≤ 2.0× | 3.00× | FAIL |
| sessions p50 file: 10,000 ÷ 100 | ≤ 1.1× | 1.00× | PASS |
| sessions p50 db: 10,000 ÷ 100 | ≤ 1.1× | 1.10× | PASS |

## Integrity (all repetitions together)

Counted in samples for post, post-metrics (a sample: 12 metrics at one time), batch and sessions, users for register, sessions for login. *Stored, unacknowledged*: requests that were in flight when wrk stopped (it does not wait for their answers), stored by the server; at most one request per connection.

| workload | variant | 2xx | acknowledged | stored | lost | stored, unacknowledged | non-2xx | socket errors | unexpected | verdict |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| post | ceiling | 1000 | — | — | — (ceiling) | — | 0 | 0 | — | ok |
| post | file | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| post | db | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| get_1k | ceiling | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| get_1k | file | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| get_1k | db | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| get_100k | ceiling | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| get_100k | file | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| get_100k | db | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| get_100k_step60 | ceiling | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| get_100k_step60 | file | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| get_100k_step60 | db | 1000 | — | — | — (reads) | — | 0 | 0 | — | ok |
| batch | file | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| batch | db | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| sessions_100 | file | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| sessions_100 | db | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| sessions_10000 | file | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| sessions_10000 | db | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| sessions_10000_cold | file | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| sessions_10000_cold | db | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| register | file | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| register | db | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| login | file | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |
| login | db | 1000 | 1000 | 1002 | 0 | 2 | 0 | 0 | 0 | ok |

Verdict: no acknowledged write lost, every answer 2xx.
"""  # noqa: E501 (the report's lines are as long as they are)


def test_a_run_of_every_workload_in_both_modes_renders_the_whole_report() -> None:
    table, healthy = _render(_every_workload(), ["file", "db"], reps=1)

    assert healthy
    assert table == EVERY_WORKLOAD_REPORT


def _history_runs() -> list[Measurement]:
    """The file mode's history: reads (p50 ms), posts (p95 ms), memory (MB) and disk (bytes per sample)."""
    runs = [
        _reference("history_samples", "file", 0, 2_592_000.0),
        _reference("history_disk_raw", "file", 0, 5.5),
        _reference("history_disk_rollups", "file", 0, 1.0),
        _reference("history_disk_total", "file", 0, 7.0),
        _reference("history_disk_closed", "file", 0, 6.5),
    ]
    for rep, (long, short, whole, raw, busy, idle, growth) in enumerate(
        ((3.0, 2.0, 9.0, 2.0, 10.0, 4.0, 40.0), (3.3, 2.0, 9.0, 2.0, 12.0, 4.0, 44.0))
    ):
        runs += [
            _run("history_recent_long", "file", rep, long, checked=False),
            _run("history_recent_short", "file", rep, short, checked=False),
            _run("history_whole", "file", rep, whole, checked=False),
            _run("history_raw_1k", "file", rep, raw, checked=False),
            _run("history_post_busy", "file", rep, busy, p50=1.0),
            _run("history_post_idle", "file", rep, idle, p50=1.0),
            _reference("history_rss_growth", "file", rep, growth),
        ]
    return runs


def test_the_history_table_holds_each_mode_against_its_own_reference_reads() -> None:
    table, healthy = _render(_history_runs(), ["file"])

    assert healthy
    lines = table.splitlines()
    # Last 10 minutes: 3.0 and 3.3 against 2.0 and 2.0, ratios 1.5 and 1.65: 1.57.
    assert "| last 10 minutes of the long session: p50 ms | 3.15 ±5% | — |" in lines
    assert "| p50 ratio long ÷ 10-minute | 1.57× | — |" in lines
    assert "| p95 ratio readers ÷ none | 2.75× | — |" in lines
    assert "| bytes on disk per sample: raw + rollups | 7 | — |" in lines
    assert "| bytes on disk per sample, closed days: raw + rollups | 6.5 | — |" in lines
    assert "| history_recent_long | file | 2000 | — | — | — (reads) | — | 0 | 0 | — | ok |" in lines


def test_history_targets_are_ratios_and_amounts_with_their_units() -> None:
    table, _ = _render(_history_runs(), ["file"])

    lines = table.splitlines()
    assert "| history last 10 min p50 file: long ÷ 10-minute session | ≤ 1.5× | 1.57× | FAIL |" in lines
    assert "| history whole p50 file: dashboard's step ÷ 1,000 raw | ≤ 3.0× | 4.50× | FAIL |" in lines
    assert "| history RSS growth file, 8 readers | ≤ 100 MB | 42.0 MB | PASS |" in lines
    assert "| history post p95 file: 8 readers ÷ none | ≤ 2.0× | 2.75× | FAIL |" in lines
    assert "| history bytes per sample file, closed days, raw + rollups | ≤ 8 B | 6.5 B | PASS |" in lines
    assert "history RSS growth db" not in table  # db was not measured


def test_the_baseline_table_holds_this_tree_against_the_baseline_run_by_run() -> None:
    runs = [
        *_post_runs(),
        _run("post", "baseline-file", 0, 625.0, p50=4.0),
        _run("post", "baseline-file", 1, 700.0, p50=4.0),
        _run("get_1k", "file", 0, 1.1, checked=False),
        _run("get_1k", "baseline-file", 0, 1.0, checked=False),
    ]

    table, healthy = _render(runs, ["file"])

    assert healthy
    lines = table.splitlines()
    # this tree 500 and 700 against 625 and 700: ratios 0.8 and 1.0, median 0.9.
    assert "| post | 200s per s | 662 ±6% | 600 ±17% | 0.90× | — | — | — |" in lines
    assert "| get: 1,000 samples | p50 ms | 1 | 1.1 | 1.10× | — | — | — |" in lines
    assert "| post file ÷ baseline | ≥ 0.9× | 0.90× | PASS |" in lines
    assert "| get_1k p50 file ÷ baseline | ≤ 1.1× | 1.10× | PASS |" in lines
    assert "| post | baseline-file | 2000 | 2000 | 2004 | 0 | 4 | 0 | 0 | 0 | ok |" in lines
    assert "db ÷ baseline |" in table and "post db ÷ baseline" not in table
