"""perfmon's HTTP benchmark: real `perfmon serve` processes driven by wrk, side by side with a ceiling.

    python -m bench                          # both storage modes, every workload, 3 repetitions of 10 s
    python -m bench --quick --modes file --only post         # a smoke test: 1 repetition of 3 s runs
    python -m bench --only post,post-metrics                 # one CPU sample, or the agent's 12 metrics
    python -m bench --only history --seconds 6               # a month at 1 Hz beside 10 minutes
    python -m bench --only post,batch,get,sessions --baseline DIR   # against another perfmon tree
    python -m bench --only fleet --fleet-seconds 30          # 1,000 agents at 1 Hz, open loop

See bench/README.md for what each workload measures and how to read the table.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import perfmon
from perfmon.adapters.password_hasher import Argon2PasswordHasher

from . import baseline as base
from . import history
from . import workload as w
from .baseline import BaselineStore
from .fleet import FleetResult, run_fleet, run_idle
from .processes import BENCH_DIR, BenchError, Server, WrkResult, ceiling_server, perfmon_server, run_wrk
from .report import BASELINE, Check, Measurement, baseline, mode_of, render, workers
from .stores import (
    DatabaseStore,
    FileStore,
    Store,
    copy_rate,
    drop_databases,
    new_database_prefix,
    throwaway_database_url,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
GROUPS = {
    "post": ("post",),
    "post-metrics": ("post_metrics",),
    "batch": ("batch",),
    "get": ("get_1k", "get_100k", "get_100k_step60"),
    "sessions": ("sessions_100", "sessions_10000", "sessions_10000_cold"),
    "auth": ("register", "login"),
    "history": ("history",),
    "fleet": ("fleet",),
}
# The workloads that --baseline also runs on the baseline tree's servers (not post-metrics: POST /samples
# is issue 12's, which an older baseline does not have).
BASELINE_GROUPS = ("post", "batch", "get", "sessions")
# The cases that also run against each mode's `perfmon serve --workers 2` (issue 14), beside its one process.
WORKERS_CASES = ("post", "post_metrics")
MAIN_CASES = ("post", "post_metrics", "batch", "get_1k", "get_100k", "get_100k_step60", "register", "login")
SESSIONS_CASES = GROUPS["sessions"]
GET_CASES = {"get_1k": (1000, None), "get_100k": (100_000, None), "get_100k_step60": (100_000, w.GET_STEP)}
LOGIN_USER = "bench-login"
# waitress logs this WARNING for each request that finds every worker thread busy.
QUEUE_WARNING = "Task queue depth is"
# A storage of this tree's adapters, or of the --baseline tree's (through its helper process).
AnyStore = Store | BaselineStore
PASSWORD = "bench-password"  # noqa: S105 (a throwaway user of a throwaway storage)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition of 3 s runs (a smoke test)")
    parser.add_argument("--modes", default="file,db", help="storage modes, of file,db (default both)")
    parser.add_argument(
        "--only", default=",".join(GROUPS), help=f"workloads, of {','.join(GROUPS)} (default all)"
    )
    parser.add_argument("--seconds", type=int, help="length of each run (default 10, 3 with --quick)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default 3, 1 with --quick)")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads of every server (8)")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL server to make the throwaway databases on (its database is only used to "
        f"CREATE and DROP them; default {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results.md", help="the table's file")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="also profile each mode's server under `post` with py-spy"
    )
    parser.add_argument(
        "--history-days",
        type=int,
        help=f"days at 1 Hz in the history's long session (default {w.HISTORY_DAYS}, 1 with --quick)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run post, batch, get and sessions on the perfmon package in DIR (e.g. "
        "`git archive 70a4571 perfmon | tar -x -C DIR`), each with storages of its own making",
    )
    parser.add_argument(
        "--fleet-seconds",
        type=int,
        help=f"seconds of the fleet's load (default {w.FLEET_SECONDS}, 5 with --quick)",
    )
    parser.add_argument(
        "--fleet-connections",
        type=int,
        default=w.FLEET_CONNECTIONS,
        help=f"the fleet's agents, a keep-alive connection each (default {w.FLEET_CONNECTIONS:,})",
    )
    parser.add_argument(
        "--fleet-workers",
        type=int,
        default=1,
        help="the fleet's server: `perfmon serve --workers N` (default 1: one process, perfmon's default)",
    )
    parser.add_argument("--max-minutes", type=float, default=90, help="abort past this (default 90)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp folder (logs, data)")
    arguments = parser.parse_args(argv)
    arguments.modes = _choices(parser, "--modes", arguments.modes, ("file", "db"))
    arguments.only = _choices(parser, "--only", arguments.only, tuple(GROUPS))
    arguments.seconds = arguments.seconds or (3 if arguments.quick else 10)
    arguments.reps = arguments.reps or (1 if arguments.quick else 3)
    arguments.history_days = arguments.history_days or (1 if arguments.quick else w.HISTORY_DAYS)
    arguments.fleet_seconds = arguments.fleet_seconds or (5 if arguments.quick else w.FLEET_SECONDS)
    positive = (
        arguments.seconds, arguments.reps, arguments.threads, arguments.history_days, arguments.fleet_seconds,
        arguments.fleet_connections, arguments.fleet_workers,
    )  # fmt: skip
    if min(positive) < 1:
        parser.error(
            "--seconds, --reps, --threads, --history-days and the --fleet-... flags must be positive"
        )
    if arguments.baseline is not None:
        try:
            arguments.baseline = base.check_tree(arguments.baseline)
        except BenchError as error:
            parser.error(str(error))
        if not set(arguments.only) & set(BASELINE_GROUPS):
            parser.error(f"--baseline runs {','.join(BASELINE_GROUPS)}: include one in --only")
    if arguments.profile and "post" not in arguments.only:
        parser.error("--profile profiles the post workload: include post in --only")
    arguments.cases = [case for group in arguments.only for case in GROUPS[group]]
    return arguments


def _choices(parser: argparse.ArgumentParser, flag: str, text: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        parser.error(f"{flag} takes a comma-separated list of {', '.join(allowed)}")
    return [item for item in allowed if item in chosen]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    """Prepares the storages, runs the repetitions, and cleans up everything it made."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        self.arguments = arguments
        self.cases: list[str] = arguments.cases
        self.modes: list[str] = arguments.modes
        self.temp = Path(tempfile.mkdtemp(prefix="perfmon-bench-"))
        self.logs = self.temp / "logs"
        self.logs.mkdir()
        self.database_prefix = new_database_prefix()
        self.databases: list[str] = []
        # By (variant, storage name): a mode's or, with --baseline, the baseline tree's ("baseline-file").
        self.stores: dict[tuple[str, str], AnyStore] = {}
        self.baselines = [baseline(mode) for mode in self.modes] if arguments.baseline else []
        # Each mode's `perfmon serve --workers 2`, for post and post-metrics, on a storage of its own.
        self.workers = [workers(mode) for mode in self.modes] if set(WORKERS_CASES) & set(self.cases) else []
        self.baseline_cases = [
            case for group in BASELINE_GROUPS for case in GROUPS[group] if case in self.cases
        ]
        self.history_data: dict[str, history.HistoryData] = {}
        self.history_runs = history.HistoryRuns(
            self._wrk, self._record, self._next_run, _check_posts, arguments.seconds
        )
        self.session_tokens: dict[tuple[str, str], list[str]] = {}
        self.get_tokens: dict[tuple[str, int], str] = {}
        self.servers: list[Server] = []
        self.measurements: list[Measurement] = []
        self.run_number = 0

    # Storages -----------------------------------------------------------------------------------

    def _store(self, variant: str, name: str) -> AnyStore:
        mode = mode_of(variant)
        own = not variant.startswith(BASELINE)
        if mode == "file":
            location = self.temp / f"data-{variant}-{name}"
            if own:
                return FileStore(location)
            return BaselineStore(self.arguments.baseline, mode, str(location), self._store_log(variant, name))
        label = {mode: name, baseline(mode): f"baseline_{name}", workers(mode): f"w{w.POST_WORKERS}_{name}"}[
            variant
        ]
        database = self.database_prefix if label == "main" else f"{self.database_prefix}_{label}"
        self.databases.append(database)
        url = throwaway_database_url(self.arguments.database_url, database)
        if own:
            return DatabaseStore(url)
        return BaselineStore(self.arguments.baseline, mode, url, self._store_log(variant, name))

    def _store_log(self, variant: str, name: str) -> Path:
        return self.logs / f"store-{variant}-{name}.log"

    def prepare(self) -> None:
        """Fill each storage through the adapters (the baseline's through its own), before any server
        reads it."""
        if (self.workers or self.arguments.fleet_workers > 1) and not _serve_takes_workers():
            if self.arguments.fleet_workers > 1 and "fleet" in self.cases:
                raise BenchError("--fleet-workers: this perfmon's `perfmon serve` has no --workers")
            if self.workers:
                _progress("this perfmon's `perfmon serve` has no --workers: post --workers 2 is left out")
            self.workers = []
        for variant in [*self.modes, *self.baselines]:
            own = not variant.startswith(BASELINE)
            cases = set(self.cases if own else self.baseline_cases)
            started = time.monotonic()
            if cases & set(MAIN_CASES):
                store = self.stores[variant, "main"] = self._store(variant, "main")
                for case, (count, _) in GET_CASES.items():
                    if case in cases and (variant, count) not in self.get_tokens:
                        token = self.get_tokens[variant, count] = store.new_sessions(1)[0]
                        store.fill(token, w.history(count))
                if "login" in cases:
                    assert isinstance(store, Store)
                    store.ensure_user(LOGIN_USER, Argon2PasswordHasher().hash(PASSWORD))
            if cases & set(SESSIONS_CASES):
                for count in w.SESSIONS_COUNTS:
                    name = f"s{count}"
                    store = self.stores[variant, name] = self._store(variant, name)
                    self.session_tokens[variant, name] = store.new_sessions(count)
            if "history" in cases:
                store = self.stores[variant, "history"] = self._store(variant, "history")
                assert isinstance(store, Store)
                data, figures = history.prepare(store, self.arguments.history_days, _progress)
                self.history_data[variant] = data
                for figure in figures:
                    self._record(figure)
            if "fleet" in cases and own:
                self.stores[variant, "fleet"] = self._store(variant, "fleet")
            _progress(f"prepared the {variant} storages in {time.monotonic() - started:.1f} s")
        for variant in self.workers:
            # post and post-metrics write to fresh sessions: an empty storage of its own will do.
            self.stores[variant, "main"] = self._store(variant, "main")

    # Servers ------------------------------------------------------------------------------------

    @contextmanager
    def _serving(
        self,
        rep: int,
        names: list[str],
        ceiling: bool,
        variants: list[str] | None = None,
        flags: tuple[str, ...] = (),
    ) -> Iterator[dict[str, Server]]:
        """A server for each variant (default: every mode, baseline and workers variant) and storage
        name that has a storage, by "variant-name"; and the ceiling. `flags` go to every perfmon server."""
        servers: dict[str, Server] = {}
        try:
            if ceiling:
                servers["ceiling"] = self._start(
                    lambda log: ceiling_server(self.arguments.threads, log), f"ceiling-rep{rep}"
                )
            for variant in variants or [*self.modes, *self.baselines, *self.workers]:
                for name in names:
                    if (variant, name) not in self.stores:
                        continue
                    serve_flags = [*self.stores[variant, name].serve_flags(), *flags]
                    if variant in self.workers:
                        serve_flags += ["--workers", str(w.POST_WORKERS)]
                    label = f"{variant}-{name}"
                    own = not variant.startswith(BASELINE)
                    env = None if own else base.environment(self.arguments.baseline)
                    servers[label] = self._start(
                        functools.partial(
                            perfmon_server, label, self.arguments.threads, serve_flags, env=env
                        ),
                        f"{label}-rep{rep}",
                    )
            yield servers
        finally:
            for server in servers.values():
                server.stop()
                self.servers.remove(server)

    def _start(self, start: Callable[[Path], Server], log_name: str) -> Server:
        server = start(self.logs / f"{log_name}.log")
        self.servers.append(server)
        return server

    # Repetitions --------------------------------------------------------------------------------

    def run_repetition(self, rep: int) -> None:
        main_cases = [case for case in MAIN_CASES if case in self.cases]
        if main_cases:
            needs_ceiling = any(_against_ceiling(case) for case in main_cases)
            with self._serving(rep, ["main"], ceiling=needs_ceiling) as servers:
                for case in main_cases:
                    for variant in _rotated(self._variants(case), rep):
                        self._measure(rep, case, variant, servers)
        sessions_cases = [case for case in SESSIONS_CASES if case in self.cases]
        if sessions_cases:
            names = [f"s{count}" for count in w.SESSIONS_COUNTS]
            with self._serving(rep, names, ceiling=False) as servers:
                for case in sessions_cases:
                    for variant in _rotated(self._storage_variants(case), rep):
                        self._measure(rep, case, variant, servers)
        if "fleet" in self.cases:
            for mode in _rotated(self.modes, rep):
                self._fleet_run(rep, mode)
        if "history" in self.cases:
            with self._serving(rep, ["history"], ceiling=False) as servers:
                for mode in _rotated(self.modes, rep):
                    store = self.stores[mode, "history"]
                    assert isinstance(store, Store)
                    self.history_runs.run(
                        rep, mode, servers[f"{mode}-history"], store, self.history_data[mode]
                    )

    def _storage_variants(self, case: str) -> list[str]:
        """The modes, and their baselines when the case is one --baseline runs."""
        return [*self.modes, *(self.baselines if case in self.baseline_cases else [])]

    def _variants(self, case: str) -> list[str]:
        if _against_ceiling(case):
            return [
                "ceiling",
                *self._storage_variants(case),
                *(self.workers if case in WORKERS_CASES else []),
            ]
        if case == "batch":
            return [*self._storage_variants(case), *(["copy"] if "db" in self.modes else [])]
        return [*self.modes, "argon2"]

    def _measure(self, rep: int, case: str, variant: str, servers: dict[str, Server]) -> None:
        seconds = self.arguments.seconds
        if variant == "copy":
            url = self._database_url("main")
            rate = copy_rate(url, connections=w.BATCH_CONNECTIONS, batch_size=w.BATCH_SIZE, seconds=seconds)
            self._record(Measurement(case, variant, rep, value=rate))
            return
        if variant == "argon2":
            self._record(Measurement(case, variant, rep, value=_argon2_rate(seconds)))
            return
        if case.startswith("sessions"):
            self._measure_sessions(rep, case, variant, servers)
            return
        server = servers["ceiling" if variant == "ceiling" else f"{variant}-main"]
        store = None if variant == "ceiling" else self.stores[variant, "main"]
        name = f"{case}-{variant}-rep{rep}"
        if case == "post":
            tokens = [str(uuid.uuid4()) for _ in range(w.POST_SESSIONS)]
            if store is not None:
                tokens = store.new_sessions(w.POST_SESSIONS)
            self._post_run(rep, case, variant, server, store, tokens, w.POST_CONNECTIONS, name)
        elif case == "post_metrics":
            self._post_metrics_run(rep, variant, server, store, name)
        elif case == "batch":
            assert store is not None
            tokens = store.new_sessions(w.BATCH_SESSIONS)
            run, base = self._next_run()
            config = {"kind": "batch", "tokens": tokens, "base_time": base, "batch_size": w.BATCH_SIZE}
            result = self._wrk(server, config, w.BATCH_CONNECTIONS, name)
            check = _check_batches(store, tokens, base, result)
            rate = result.ok * w.BATCH_SIZE / result.duration_s
            self._record(Measurement(case, variant, rep, rate, result.p50_ms, check, result))
        elif case in GET_CASES:
            self._get_run(rep, case, variant, server, name)
        elif case == "register":
            assert store is not None
            run, _ = self._next_run()
            config = {"kind": "register", "run": run, "password": PASSWORD}
            result = self._wrk(server, config, w.AUTH_CONNECTIONS, name)
            check = _check_register(store, run, result)
            self._record(Measurement(case, variant, rep, result.ok_per_second, result.p50_ms, check, result))
        elif case == "login":
            assert store is not None
            before = store.sessions_of(LOGIN_USER)
            config = {"kind": "login", "user": LOGIN_USER, "password": PASSWORD}
            result = self._wrk(server, config, w.AUTH_CONNECTIONS, name)
            check = _check_login(store, before, result)
            self._record(Measurement(case, variant, rep, result.ok_per_second, result.p50_ms, check, result))

    def _measure_sessions(self, rep: int, case: str, variant: str, servers: dict[str, Server]) -> None:
        count = 100 if case == "sessions_100" else 10_000
        name = f"s{count}"
        all_tokens = self.session_tokens[variant, name]
        if case == "sessions_10000_cold":
            tokens = all_tokens
        else:
            tokens = all_tokens[:: len(all_tokens) // w.SESSIONS_WORKING_SET][: w.SESSIONS_WORKING_SET]
        self._post_run(
            rep,
            case,
            variant,
            servers[f"{variant}-{name}"],
            self.stores[variant, name],
            tokens,
            w.SESSIONS_CONNECTIONS,
            f"{case}-{variant}-rep{rep}",
        )

    def _post_run(
        self,
        rep: int,
        case: str,
        variant: str,
        server: Server,
        store: AnyStore | None,
        tokens: list[str],
        connections: int,
        name: str,
    ) -> None:
        _, base = self._next_run()
        result = self._wrk(server, {"kind": "post", "tokens": tokens, "base_time": base}, connections, name)
        check = None if store is None else _check_posts(store, tokens, base, result)
        self._record(Measurement(case, variant, rep, result.ok_per_second, result.p50_ms, check, result))

    def _post_metrics_run(
        self, rep: int, variant: str, server: Server, store: AnyStore | None, name: str
    ) -> None:
        """Single POST /samples of the agent's 12 metrics, over fresh sessions each on a host of its own;
        against perfmon, every acknowledged sample checked in each of its 12 series."""
        tokens = [str(uuid.uuid4()) for _ in range(w.POST_SESSIONS)]
        if store is not None:
            assert isinstance(store, Store), "the baseline does not run post-metrics"
            tokens = store.new_sessions(w.POST_SESSIONS, hosts=True)
        _, base = self._next_run()
        config = {"kind": "post_metrics", "tokens": tokens, "base_time": base}
        result = self._wrk(server, config, w.POST_CONNECTIONS, name)
        check = None if store is None else _check_post_metrics(store, tokens, base, result)
        self._record(
            Measurement("post_metrics", variant, rep, result.ok_per_second, result.p50_ms, check, result)
        )

    def _fleet_run(self, rep: int, mode: str) -> None:
        """On a freshly started server: the idle latency (single posts from one connection, one at a
        time), then the fleet (bench/fleet.py); every acknowledged sample of both read back."""
        store = self.stores[mode, "fleet"]
        assert isinstance(store, Store)
        connections = self.arguments.fleet_connections
        idle_token, *tokens = store.new_sessions(connections + 1, hosts=True)
        name = f"fleet-{mode}-rep{rep}"
        fleet_workers = self.arguments.fleet_workers
        # A fleet's own connection limit (README "Files kept open"): the file descriptors it leaves keep
        # every agent's session files open, which the default 10,000 would not on a 20,000 limit.
        flags = ("--connection-limit", str(max(2 * connections, w.FLEET_CONNECTION_LIMIT)))
        flags += ("--workers", str(fleet_workers)) if fleet_workers > 1 else ()
        with self._serving(rep, ["fleet"], ceiling=False, variants=[mode], flags=flags) as servers:
            server = servers[f"{mode}-fleet"]
            _check_connection_limit(server, connections)
            idle = run_idle(
                server.url,
                idle_token,
                requests=w.FLEET_IDLE_REQUESTS,
                work_dir=self.logs,
                name=f"{name}-idle",
            )
            idle_check = _check_fleet(store, [idle_token], idle)
            self._record(Measurement("fleet_idle", mode, rep, idle.p50_ms, idle.p50_ms, idle_check, idle))
            cpu_before, warnings_before = server.cpu_seconds(), server.log_count(QUEUE_WARNING)
            result = run_fleet(
                server.url, tokens, seconds=self.arguments.fleet_seconds, work_dir=self.logs, name=name
            )
            result.server_cpu_s = server.cpu_seconds() - cpu_before
            result.queue_warnings = server.log_count(QUEUE_WARNING) - warnings_before
            check = _check_fleet(store, tokens, result)
        _progress(
            f"  fleet {mode}: {result.sent:,} sent at {result.sent_per_second:,.0f} per s, p99 "
            f"{result.p99_ms:,.1f} ms ({result.p99_ms / idle.p50_ms:,.1f}× the idle p50), max "
            f"{result.max_ms:,.0f} ms, {result.late_sends:,} late sends, {result.errors:,} errors"
            f"{f' {result.socket_errors}' if result.socket_errors else ''}, send lag p99 "
            f"{result.send_lag_p99_ms:.1f} ms, generator CPU {result.generator_cpu_s:.1f} s"
        )
        self._record(Measurement("fleet", mode, rep, result.p99_ms, result.p50_ms, check, result))

    def _get_run(self, rep: int, case: str, variant: str, server: Server, name: str) -> None:
        count, step = GET_CASES[case]
        if variant == "ceiling":
            path = f"/cpu?hash={uuid.uuid4()}&n={count}"
        else:
            path = f"/cpu?hash={self.get_tokens[variant, count]}"
        if step is not None:
            path += f"&step={step}"
        _check_get_answer(server.url + path, count, step)
        result = self._wrk(server, {"kind": "get", "path": path}, w.GET_CONNECTIONS, name)
        self._record(Measurement(case, variant, rep, result.p50_ms, result.p50_ms, None, result))

    def _wrk(
        self,
        server: Server,
        config: dict[str, object],
        connections: int,
        name: str,
        seconds: int | None = None,
    ) -> WrkResult:
        cpu_before, warnings_before = server.cpu_seconds(), server.log_count(QUEUE_WARNING)
        result = run_wrk(
            server.url, config, connections=connections, seconds=seconds or self.arguments.seconds,
            work_dir=self.logs, name=name,
        )  # fmt: skip
        result.server_cpu_s = server.cpu_seconds() - cpu_before
        result.queue_warnings = server.log_count(QUEUE_WARNING) - warnings_before
        return result

    def _next_run(self) -> tuple[int, float]:
        self.run_number += 1
        return self.run_number, w.run_time_base(self.run_number)

    def _database_url(self, name: str) -> str:
        store = self.stores["db", name]
        assert isinstance(store, DatabaseStore)
        return store.url

    def _record(self, measurement: Measurement) -> None:
        self.measurements.append(measurement)
        _progress(f"  rep {measurement.rep + 1}: {measurement.describe()}")

    # Profile ------------------------------------------------------------------------------------

    def profile(self, folder: Path) -> None:
        """The ceiling's and each mode's server under the `post` load, sampled by py-spy: once every
        thread that is not idle (`*-busy.txt`), once only the thread holding the GIL (`*-gil.txt`)."""
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(py_spy).exists():
            raise BenchError("--profile needs py-spy: pip install py-spy")
        folder.mkdir(parents=True, exist_ok=True)
        seconds = max(self.arguments.seconds, 4)
        with self._serving(-1, ["main"], ceiling=True, variants=self.modes) as servers:
            for variant in ["ceiling", *self.modes]:
                for flavour, flags in (("busy", []), ("gil", ["--gil"])):
                    server = servers["ceiling" if variant == "ceiling" else f"{variant}-main"]
                    store = None if variant == "ceiling" else self.stores[variant, "main"]
                    tokens = [str(uuid.uuid4()) for _ in range(w.POST_SESSIONS)]
                    if store is not None:
                        tokens = store.new_sessions(w.POST_SESSIONS)
                    output = folder / f"post-{variant}-{flavour}.txt"
                    command = [
                        py_spy, "record", "--pid", str(server.pid), "--duration", str(seconds - 2),
                        "--rate", "100", "--format", "raw", "--output", str(output), *flags,
                    ]  # fmt: skip
                    recorder = threading.Timer(1.0, _run_quietly, args=(command, seconds + 30))
                    recorder.start()
                    try:
                        self._post_run(
                            -1, "profile", variant, server, store, tokens, w.POST_CONNECTIONS,
                            f"profile-{variant}-{flavour}",
                        )  # fmt: skip
                    finally:
                        recorder.join()
                    _progress(f"  profile: {output}")

    # Cleanup ------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        for server in list(self.servers):
            server.stop()
        for store in self.stores.values():
            store.close()
        if self.databases:
            left = drop_databases(self.arguments.database_url, self.databases)
            if left:
                _progress(f"could not drop the databases {', '.join(left)}: drop them by hand")
        if self.arguments.keep_temp:
            _progress(f"kept {self.temp}")
        else:
            shutil.rmtree(self.temp, ignore_errors=True)


def _against_ceiling(case: str) -> bool:
    """True for the cases that the ceiling app also serves."""
    return case in ("post", "post_metrics") or case.startswith("get")


def _serve_takes_workers() -> bool:
    """Whether the perfmon that the servers run has `perfmon serve --workers N` (issue 14's; a tree of
    before it, put on the path to be measured, has not)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "perfmon", "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=BENCH_DIR,  # as the servers run: the checkout's perfmon/ is not ahead of PYTHONPATH
        )
    except subprocess.TimeoutExpired:
        return False
    return "--workers" in done.stdout


# perfmon's start-up line says how many connections it takes: "... connections<=N".
_CONNECTION_LIMIT = re.compile(r"connections<=(\d+)")


def _check_connection_limit(server: Server, connections: int) -> None:
    """Raise BenchError when the server says it takes fewer connections than the fleet opens (its open
    file limit, `ulimit -n`, lowered its connection limit)."""
    limits = [int(limit) for limit in _CONNECTION_LIMIT.findall(server.log_path.read_text(errors="replace"))]
    if limits and min(limits) < connections:
        raise BenchError(
            f"{server.name} takes at most {min(limits)} connections, not the fleet's {connections}: raise "
            "its open file limit (ulimit -n) or lower --fleet-connections"
        )


def _rotated(items: list[str], rep: int) -> list[str]:
    """The variants in a different order each repetition, so that no one always runs first."""
    shift = rep % len(items)
    return items[shift:] + items[:shift]


def _run_quietly(command: list[str], timeout: float) -> None:
    subprocess.run(command, capture_output=True, timeout=timeout, check=False)


def _argon2_rate(seconds: float) -> float:
    """Argon2id hashes per second with perfmon's parameters, one thread per core, in this process."""
    hasher = Argon2PasswordHasher()
    counts = [0] * (os.cpu_count() or 1)
    deadline = time.monotonic() + seconds

    def hash_until_deadline(index: int) -> None:
        while time.monotonic() < deadline:
            hasher.hash(PASSWORD)
            counts[index] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=hash_until_deadline, args=(i,)) for i in range(len(counts))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.monotonic() - started)


# Checks: what a run stored against what wrk saw acknowledged -------------------------------------


def _touched(tokens: list[str], result: WrkResult) -> list[str]:
    """The sessions that the run's requests went to (workload.lua's choice, replayed)."""
    threads = len(result.sent_by_thread)
    touched: set[str] = set()
    for index, sent in result.sent_by_thread.items():
        for request in range(min(sent, len(tokens))):
            touched.add(tokens[(index + request * threads) % len(tokens)])
    return sorted(touched)


def _sent_request(moment: float, base: float, result: WrkResult, span: float) -> bool:
    """True when the time is one that a request of this run carried."""
    offset = moment - 0.25 - base
    thread, request = divmod(offset, w.THREAD_TIME_SPAN)
    return thread in result.sent_by_thread and request // span < result.sent_by_thread[int(thread)]


def _check_posts(store: AnyStore, tokens: list[str], base: float, result: WrkResult) -> Check:
    stored = store.stored_times(_touched(tokens, result), base, base + w.RUN_TIME_SPAN)
    stored_set = set(stored)
    acked = {float(moment) for moment in result.acked}
    unexpected = len(stored) - len(stored_set)  # duplicates
    unexpected += sum(1 for moment in stored_set if not _sent_request(moment, base, result, 1))
    return Check(
        acknowledged=result.ok,
        stored=len(stored),
        lost=result.ok - len(acked & stored_set),
        stored_unacknowledged=len(stored_set - acked),
        in_flight=sum(result.sent_by_thread.values()) - result.requests,
        unexpected=unexpected,
    )


def _check_batches(store: AnyStore, tokens: list[str], base: float, result: WrkResult) -> Check:
    stored = store.stored_times(_touched(tokens, result), base, base + w.RUN_TIME_SPAN)
    per_batch: dict[float, int] = {}
    unexpected = 0
    for moment in stored:
        if not _sent_request(moment, base, result, w.BATCH_SIZE):
            unexpected += 1
        key = (moment - base) // w.BATCH_SIZE
        per_batch[key] = per_batch.get(key, 0) + 1
    complete = sum(1 for count in per_batch.values() if count == w.BATCH_SIZE)
    # All or nothing: a batch stored in part is a broken promise whatever the answer was.
    unexpected += sum(count for count in per_batch.values() if count != w.BATCH_SIZE)
    return Check(
        acknowledged=result.ok * w.BATCH_SIZE,
        stored=len(stored),
        lost=max(0, result.ok - complete) * w.BATCH_SIZE,
        stored_unacknowledged=max(0, complete - result.ok) * w.BATCH_SIZE,
        in_flight=(sum(result.sent_by_thread.values()) - result.requests) * w.BATCH_SIZE,
        unexpected=unexpected,
    )


# wrk stops without waiting for the requests in flight, and the server goes on storing them while the
# check reads the 12 series one after the other: one read can then see a sample in some series and not
# in others. A sample found stored in part is read again, for up to this long, before it counts.
SETTLE_SECONDS = 10.0
SETTLE_PAUSE_SECONDS = 0.5


def _check_post_metrics(
    store: Store, tokens: list[str], base: float, result: WrkResult, settle_seconds: float = SETTLE_SECONDS
) -> Check:
    """Counted in samples (a request's 12 metrics at one time). The answer, `{"stored": 1}`, names no
    sample, so, as for batches, acknowledged requests are counted: every one must have a complete sample
    stored (all 12 metrics, each the value its request carried: workload.agent_metrics). A sample stored
    in part (still so after `settle_seconds`), with a wrong value, twice, or at a time no request carried
    is *unexpected*; so is a 200 that did not say `{"stored": 1}`."""
    touched = _touched(tokens, result)
    carried = functools.partial(_request_metrics, base=base, result=result)
    stored = _settled(
        lambda: _stored_samples(store, touched, base, base + w.RUN_TIME_SPAN, carried), settle_seconds
    )
    complete = len(stored.complete)
    return Check(
        acknowledged=result.ok,
        stored=stored.found,
        lost=max(0, result.ok - complete),
        stored_unacknowledged=max(0, complete - result.ok),
        in_flight=sum(result.sent_by_thread.values()) - result.requests,
        unexpected=stored.unexpected + result.ok - len(result.acked),  # + 200s not saying {"stored": 1}
    )


def _check_fleet(
    store: Store, tokens: list[str], result: FleetResult, settle_seconds: float = SETTLE_SECONDS
) -> Check:
    """The fleet's (or its idle posts') samples, counted as post-metrics' are, but by identity: the
    generator knows which requests were answered `{"stored": 1}`, and each must have its sample stored
    whole (*lost* otherwise); agent i posted to tokens[i]."""
    assert result.schedule is not None
    schedule = result.schedule
    touched = [tokens[agent] for agent, sent in result.sent_by_thread.items() if sent]
    stored = _settled(
        lambda: _stored_samples(store, touched, schedule.start, schedule.end, result.carried), settle_seconds
    )
    acknowledged = result.acknowledged_times()
    return Check(
        acknowledged=len(acknowledged),
        stored=stored.found,
        lost=len(acknowledged - stored.complete),
        stored_unacknowledged=len(stored.complete - acknowledged),
        in_flight=sum(result.sent_by_thread.values()) - result.requests,
        unexpected=stored.unexpected + result.not_stored_one,
    )


@dataclass(frozen=True)
class StoredSamples:
    """One read of a run's samples in each of the agent's 12 series."""

    complete: set[float]  # times of the samples stored whole: every metric, each its request's value
    found: int  # times with a metric stored with its request's value
    in_part: int  # of those, the ones not complete
    unexpected: int  # metrics stored twice, with a value no request carried at that time, or in part


def _settled(read: Callable[[], StoredSamples], settle_seconds: float) -> StoredSamples:
    """`read()` again while it finds samples stored in part, for up to `settle_seconds`."""
    deadline = time.monotonic() + settle_seconds
    while True:
        stored = read()
        if not stored.in_part or time.monotonic() >= deadline:
            return stored
        _progress(
            f"  {stored.in_part} sample(s) stored in part: reading again (the server may still be storing)"
        )
        time.sleep(SETTLE_PAUSE_SECONDS)


def _stored_samples(
    store: Store,
    tokens: list[str],
    start: float,
    end: float,
    carried: Callable[[float], dict[str, float] | None],
) -> StoredSamples:
    """Every metric of the agent's stored in these sessions within [start, end], each held against the
    metrics that `carried(time)` says the request of its time sent (None: no request carried it)."""
    expected: dict[float, dict[str, float] | None] = {}  # time -> its request's metrics (None: no request)
    found: dict[float, int] = {}  # time -> metrics stored with its request's value
    unexpected = 0
    for metric in w.POST_METRICS:
        points = store.stored_points(tokens, metric, start, end)
        unexpected += len(points) - len(set(points))  # stored twice
        for moment, value in set(points):
            if moment not in expected:
                expected[moment] = carried(moment)
            metrics = expected[moment]
            if metrics is None or value != metrics[metric]:
                unexpected += 1
            else:
                found[moment] = found.get(moment, 0) + 1
    complete = {moment for moment, count in found.items() if count == len(w.POST_METRICS)}
    in_part = len(found) - len(complete)
    return StoredSamples(complete, len(found), in_part, unexpected + in_part)


def _request_metrics(moment: float, base: float, result: WrkResult) -> dict[str, float] | None:
    """The metrics that the post-metrics request of this time carried; None when no request carried it."""
    offset = moment - 0.25 - base
    if offset != int(offset) or not _sent_request(moment, base, result, 1):
        return None
    return w.agent_metrics(int(offset % w.THREAD_TIME_SPAN))


def _check_register(store: AnyStore, run: int, result: WrkResult) -> Check:
    sessions = store.existing_sessions(result.acked)
    names = [f"r{run}_{index}_{n}" for index, sent in result.sent_by_thread.items() for n in range(sent)]
    users = store.existing_users(names)
    return Check(
        acknowledged=result.ok,
        stored=users,
        lost=result.ok - sessions,
        stored_unacknowledged=max(0, users - sessions),
        in_flight=sum(result.sent_by_thread.values()) - result.requests,
        unexpected=0,
    )


def _check_login(store: AnyStore, before: int, result: WrkResult) -> Check:
    sessions = store.existing_sessions(result.acked)
    new = store.sessions_of(LOGIN_USER) - before
    return Check(
        acknowledged=result.ok,
        stored=new,
        lost=result.ok - sessions,
        stored_unacknowledged=max(0, new - sessions),
        in_flight=sum(result.sent_by_thread.values()) - result.requests,
        unexpected=0,
    )


def _check_get_answer(url: str, count: int, step: int | None) -> None:
    """One GET before the run: the answer holds what the session holds (a fast wrong answer is no win)."""
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 (our server)
        payload = json.loads(answer.read())["payload"]
    history = w.history(count)
    expected = count if step is None else len({math.floor(t / step) for _, t in history})
    if len(payload) != expected:
        raise BenchError(f"GET {url} answered {len(payload)} items, not {expected}")
    first = payload[0]
    if step is None and (first["cpu"], first["timestamp"]) != history[0]:
        raise BenchError(f"GET {url} answered {first} first, not {history[0]}")


# Main -------------------------------------------------------------------------------------------


def _machine(arguments: argparse.Namespace) -> dict[str, str]:
    def output(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"

    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    package = _perfmon_package()
    commit = output(["git", "-C", str(package), "rev-parse", "--short", "HEAD"])
    dirty = output(["git", "-C", str(package), "status", "--porcelain", "--", "."])
    if commit.startswith("fatal") or commit == "?":
        version = f"{package} (not a git checkout)"
    else:
        version = commit + (" + uncommitted changes under perfmon/" if dirty not in ("?", "") else "")
    machine = {
        "nproc": str(os.cpu_count()),
        "CPU": cpu,
        "Python": platform.python_version(),
        "OS": f"{platform.system()} {platform.release()}",
        "wrk": output(["wrk", "-v"]).split("Copyright")[0].strip(),
        "perfmon": version,
        "perfmon source digest": _source_fingerprint(_perfmon_package()),
        "load average at start": " ".join(f"{load:.2f}" for load in os.getloadavg()),
    }
    if arguments.baseline is not None:
        machine["baseline (--baseline)"] = (
            f"{arguments.baseline}, source digest {_source_fingerprint(arguments.baseline / 'perfmon')}"
        )
    if "db" in arguments.modes:
        machine["PostgreSQL"] = output(["psql", arguments.database_url, "-Atc", "show server_version"])
    return machine


def _perfmon_package() -> Path:
    """The folder of the perfmon package that this Python (and so every server) imports."""
    return Path(perfmon.__file__).resolve().parent


def _source_fingerprint(package: Path) -> str:
    """A digest of perfmon's source as the servers import it: a change mid-run shows in the report.
    (To measure one version while perfmon/ is being edited: `git archive COMMIT perfmon | tar -x -C DIR`,
    then `PYTHONSAFEPATH=1 PYTHONPATH=DIR:$PWD python -m bench` from the checkout: PYTHONSAFEPATH keeps
    the checkout's own perfmon/ in the current folder from coming first.)"""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _time_is_up(signum: int, frame: FrameType | None) -> None:
    raise BenchError("the bench ran past --max-minutes")


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGALRM, _time_is_up)
    signal.alarm(math.ceil(arguments.max_minutes * 60))
    machine = _machine(arguments)
    started = time.monotonic()
    bench = Bench(arguments)
    try:
        bench.prepare()
        for rep in range(arguments.reps):
            _progress(f"repetition {rep + 1} of {arguments.reps}")
            bench.run_repetition(rep)
        if arguments.profile:
            bench.profile(arguments.profile)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    finally:
        bench.cleanup()
        signal.alarm(0)
    if _source_fingerprint(_perfmon_package()) != machine["perfmon source digest"]:
        machine["perfmon source digest"] += " (**changed during the run**: figures mix two versions)"
    machine["load average at end"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    machine["bench time"] = f"{(time.monotonic() - started) / 60:.1f} min"
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    table, healthy = render(bench.measurements, arguments, machine, command.strip())
    print(table)
    arguments.results.write_text(table)
    if not healthy:
        print("bench: FAILED: data lost or non-2xx answers (see Integrity)", file=sys.stderr)
    return 0 if healthy else 1
