"""The processes the bench starts: servers (perfmon or the ceiling) and wrk, each bounded in time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# The folder that holds the bench package: a server started as `python -m bench.ceiling` imports it from here.
PACKAGE_ROOT = BENCH_DIR.parent
WORKLOAD_SCRIPT = BENCH_DIR / "workload.lua"

_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15


class BenchError(RuntimeError):
    """The bench cannot go on: a server did not start, wrk failed, a check could not run."""


class Server:
    """A server subprocess on a free port of 127.0.0.1 (it picks one and logs it), stopped by its PID."""

    def __init__(
        self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        # In bench/, not the checkout's root: `python -m perfmon` there would import the checkout's
        # perfmon/ ahead of PYTHONPATH, and a run meant to measure another version would not.
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=BENCH_DIR,
            env=env,
        )
        self.url = self._wait_for_address()
        self._wait_until_answering()

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far: all its threads and, for a server of
        several processes (`perfmon serve --workers N`), its workers' too (tree_cpu_seconds)."""
        return tree_cpu_seconds(self.pid)

    def _wait_for_address(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                self.stop()
                raise BenchError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"{self.name} did not start within {START_TIMEOUT_SECONDS} s:\n{self.log_tail()}")

    def _wait_until_answering(self) -> None:
        # The address is logged just before the loop starts; the first request must not race it.
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                # Any HTTP answer will do (the ceiling has no /healthz: it answers 404).
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=5):  # noqa: S310 (our server)
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BenchError(f"{self.name} does not answer:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def log_count(self, text: str) -> int:
        """How many times the server has logged the text so far."""
        return self.log_path.read_text(errors="replace").count(text)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to its PID, SIGKILL to the same PID if it is not gone within the timeout."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self._log.close()


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time used so far by the process `root` (all its threads) and every process
    under it, alive or ended and waited for by its parent; read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat.read_text())
        except OSError:  # gone since the listing
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    ticks = 0
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            fields = _stat_fields(Path(f"/proc/{pid}/stat").read_text())
        except OSError:
            continue
        # utime and stime (fields 14 and 15 of stat(5)); and of every process cutime and cstime (16 and
        # 17): its children that have ended and been waited for, which /proc no longer lists.
        ticks += sum(int(field) for field in fields[11:15])
        pending += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat_fields(stat: str) -> list[str]:
    """The fields of a /proc/PID/stat line from the state on (field 3 of stat(5) is index 0): the
    command, field 2, is in parentheses and may hold spaces."""
    return stat.rpartition(")")[2].split()


def perfmon_server(
    name: str, threads: int, storage_flags: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Server:
    """`perfmon serve` (as `python -m perfmon serve`) on a free port; `env` (None: the bench's) may put
    another perfmon tree on its path. `storage_flags` may end with more flags of `perfmon serve`."""
    command = [sys.executable, "-m", "perfmon", "serve", "--host", "127.0.0.1", "--port", "0"]
    return Server(name, [*command, "--threads", str(threads), *storage_flags], log_path, env)


def ceiling_server(threads: int, log_path: Path) -> Server:
    """The bare Falcon app of bench/ceiling.py (`python -m bench.ceiling`) on a free port."""
    # The bench package's folder goes last on the path: perfmon still comes from where PYTHONPATH says.
    python_path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(PACKAGE_ROOT)]))
    return Server(
        "ceiling",
        [sys.executable, "-m", "bench.ceiling", "--threads", str(threads)],
        log_path,
        env={**os.environ, "PYTHONPATH": python_path},
    )


@dataclass
class WrkResult:
    """What one wrk run saw; latencies in milliseconds."""

    duration_s: float
    requests: int
    bytes_received: int
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    sent_by_thread: dict[int, int]
    acked: list[str] = field(repr=False)
    server_cpu_s: float | None = None
    queue_warnings: int | None = None
    p95_ms: float | None = None

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    @property
    def not_ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.duration_s


def run_wrk(
    url: str, config: dict[str, object], *, connections: int, seconds: int, work_dir: Path, name: str
) -> WrkResult:
    """Run wrk with bench/workload.lua for `seconds`; its settings go through a generated Lua file."""
    threads = min(2, connections)
    out = work_dir / f"{name}.out"
    config_path = work_dir / f"{name}.config.lua"
    config_path.write_text(_lua_table({**config, "threads": threads, "out": str(out)}))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(WORKLOAD_SCRIPT),
        url,
    ]
    try:
        finished = subprocess.run(
            command,
            env={**os.environ, "BENCH_CONFIG": str(config_path)},
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish {name} in time") from None
    if finished.returncode != 0 or not out.exists():
        raise BenchError(
            f"wrk failed on {name} ({finished.returncode}):\n{finished.stdout}\n{finished.stderr}"
        )
    (work_dir / f"{name}.wrk.txt").write_text(finished.stdout + finished.stderr)
    lines = out.read_text().splitlines()
    summary = json.loads(lines[0])
    statuses: dict[int, int] = {}
    for thread in summary["threads"]:
        for status, count in thread["statuses"].items():
            statuses[int(status)] = statuses.get(int(status), 0) + count
    latency = summary["latency_us"]
    return WrkResult(
        duration_s=summary["duration_us"] / 1e6,
        requests=summary["requests"],
        bytes_received=summary["bytes"],
        statuses=statuses,
        socket_errors={kind: count for kind, count in summary["errors"].items() if kind != "status"},
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        sent_by_thread={thread["index"]: thread["sent"] for thread in summary["threads"]},
        acked=lines[1:],
        p95_ms=latency["p95"] / 1000,
    )


def _lua_table(values: dict[str, object]) -> str:
    def literal(value: object) -> str:
        if isinstance(value, str):
            return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list | tuple):
            return "{" + ", ".join(literal(item) for item in value) + "}"
        raise TypeError(f"no Lua literal for {value!r}")

    return "return {\n" + "".join(f"  {key} = {literal(value)},\n" for key, value in values.items()) + "}\n"
