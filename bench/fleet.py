"""The `fleet` workload: a thousand agents at 1 Hz against one server, open loop (issue 14).

Each agent is a keep-alive connection of its own posting the agent's 12 metrics (`POST /samples`, the
body of `post-metrics`: workload.agent_metrics) to its own session, on a host of its own, once a second at
its own fixed phase: agent i of N sends request n at `start + n + i / N` seconds. That moment is also the
sample's time, as an agent's time.time() would be, and it names the agent and the request, so the bench
can read every acknowledged sample back through the adapters and check each value.

Open loop: a request's latency runs from the moment it was *due*, not from when it could be sent, so a
server that slows down shows as latency instead of as fewer requests (no coordinated omission). HTTP/1.1
sends one request at a time on a connection: when the previous answer has not come by the time the next
request is due, that request goes as soon as the answer comes, still timed from its schedule, and counts
as a *late send*.

Two commands, each run by the bench in a process of its own (the server is a third):

    python -m bench.fleet idle URL --token T --requests 200 --out FILE
    python -m bench.fleet fleet URL --tokens FILE --connections 1000 --seconds 30 --out FILE

`idle` posts one sample at a time from one connection and times each from its send (the idle server's
latency). `fleet` opens its connections, prints `ready`, reads the start time (seconds since the epoch,
a whole second) from its stdin, runs the schedule, and writes what it saw to `--out` as JSON. The bench
(bench/run.py) starts both through `run_idle` and `run_fleet` here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import select
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import workload as w
from .processes import PACKAGE_ROOT, BenchError, WrkResult

# An agent gives up on a post after this long (perfmon/agent/adapters/http_client.py's default timeout,
# 5 s): an answer that comes later is one a real agent would not have waited for. The connection is then
# closed and the agent's next request opens a new one.
TIMEOUT_SECONDS = 5.0
# After the schedule's last request was due, the agents have this long to send the requests they still
# owe (late sends) and to get their answers; what is not sent by then counts as unsent.
DRAIN_SECONDS = 30.0
# Connections opened at once before the start: a burst of 1,000 SYNs would overflow the listen backlog.
OPENING_AT_ONCE = 50
CONNECT_TIMEOUT_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 120.0
# Descriptors the generator needs besides its connections (stdio, the event loop's, imports).
SPARE_FILES = 64
# The answer of POST /samples to one sample (PROTOCOL.md part 3).
STORED_ONE = {"stored": 1}


# The schedule: shared by the generator and the bench's check ----------------------------------------


@dataclass(frozen=True)
class Schedule:
    """When each request is due, and so the time its sample carries: agent `i` (0..connections-1) sends
    request `n` (0..requests-1) at `start + n + i / connections` seconds since the epoch."""

    start: float  # a whole second
    connections: int
    requests: int  # per agent

    def moment(self, agent: int, request: int) -> float:
        return self.start + request + agent / self.connections

    def request_of(self, moment: float) -> tuple[int, int] | None:
        """The (agent, request) whose sample carries this time; None when no request of the schedule
        does (the time is recomputed from the pair and must be the same double)."""
        offset = moment - self.start
        request = math.floor(offset)
        agent = round((offset - request) * self.connections)
        if not (0 <= request < self.requests and 0 <= agent < self.connections):
            return None
        return (agent, request) if self.moment(agent, request) == moment else None

    @property
    def end(self) -> float:
        """The last time a request of the schedule carries, at most."""
        return self.start + self.requests


def request_bytes(host: str, token: str, moment: float, request: int) -> bytes:
    """The HTTP/1.1 keep-alive `POST /samples` of one sample: the agent's 12 metrics of request number
    `request` (workload.agent_metrics), at `moment`."""
    body = json.dumps({"hash": token, "time": moment, "metrics": w.agent_metrics(request)}).encode()
    head = (
        f"POST /samples HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# The generator (runs in a process of its own) ------------------------------------------------------


class _Tally:
    """What one generator process saw; latencies in milliseconds."""

    def __init__(self, connections: int) -> None:
        self.sent = [0] * connections
        self.not_sent: list[list[int]] = [[] for _ in range(connections)]  # request numbers, per agent
        self.acked: list[list[int]] = [[] for _ in range(connections)]  # request numbers, per agent
        # Per agent, (request number, ms) of every answer, timed from its due moment (idle: from its send).
        self.latencies_ms: list[list[tuple[int, float]]] = [[] for _ in range(connections)]
        self.send_lags_ms: list[float] = []  # due -> sent, for the requests whose connection was free
        self.statuses: dict[int, int] = {}
        self.errors = {"connect": 0, "read": 0, "timeout": 0, "unsent": 0}
        self.not_stored_one = 0  # a 2xx whose body is not {"stored": 1}
        self.late_sends = 0
        self.bytes_received = 0
        self.first_send = math.inf
        self.last_send = -math.inf


class _Connection:
    """One keep-alive connection, opened again after an error."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> tuple[int, bytes, int]:
        """Send the request, read its answer: (status, body, bytes received). Raises OSError or
        asyncio.IncompleteReadError when the connection fails (it is then closed)."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(b":") for line in lines[1:] if line)
        }
        body = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, body, len(head) + len(body)


async def _post(
    connection: _Connection, request: bytes, tally: _Tally, agent: int, number: int, timeout: float
) -> tuple[int, bytes] | None:
    """One request on the connection (opened first if it is not); the answer, or None after an error
    (counted, the connection closed)."""
    try:
        if connection.writer is None:
            await connection.open()
    except (OSError, TimeoutError):
        tally.errors["connect"] += 1
        tally.not_sent[agent].append(number)
        connection.close()
        return None
    tally.sent[agent] += 1
    try:
        async with asyncio.timeout(timeout):
            status, body, size = await connection.exchange(request)
    except TimeoutError:
        tally.errors["timeout"] += 1
        connection.close()
        return None
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
        tally.errors["read"] += 1
        connection.close()
        return None
    tally.bytes_received += size
    tally.statuses[status] = tally.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        if _stored_one(body):
            tally.acked[agent].append(number)
        else:
            tally.not_stored_one += 1
    return status, body


def _stored_one(body: bytes) -> bool:
    try:
        return bool(json.loads(body) == STORED_ONE)
    except ValueError:
        return False


async def _agent(
    index: int,
    token: str,
    connection: _Connection,
    schedule: Schedule,
    started: float,
    deadline: float,
    tally: _Tally,
    timeout: float,
) -> None:
    """Agent `index`'s requests, each sent when due or, when the previous answer came after that, as soon
    as it came (a late send); `started` is the loop's clock at the schedule's start."""
    loop = asyncio.get_running_loop()
    answered = -math.inf  # when the previous request ended (answer or error), on the loop's clock
    phase = index / schedule.connections
    for number in range(schedule.requests):
        due = started + number + phase
        now = loop.time()
        if now < due:
            await asyncio.sleep(due - now)
        elif answered > due:
            tally.late_sends += 1
        sent = loop.time()
        if sent > deadline:
            tally.errors["unsent"] += schedule.requests - number
            tally.not_sent[index] += range(number, schedule.requests)
            break
        if answered <= due:
            tally.send_lags_ms.append((sent - due) * 1000)
        tally.first_send = min(tally.first_send, sent)
        tally.last_send = max(tally.last_send, sent)
        request = request_bytes(connection.host, token, schedule.moment(index, number), number)
        answer = await _post(connection, request, tally, index, number, timeout)
        answered = loop.time()
        if answer is not None:
            tally.latencies_ms[index].append((number, (answered - due) * 1000))
    connection.close()


async def _open_all(connections: Sequence[_Connection]) -> int:
    """Open the connections, OPENING_AT_ONCE at a time; how many opened (the others retry when due)."""
    slots = asyncio.Semaphore(OPENING_AT_ONCE)

    async def open_one(connection: _Connection) -> bool:
        async with slots:
            try:
                await connection.open()
            except (OSError, TimeoutError):
                connection.close()
                return False
            return True

    return sum(await asyncio.gather(*(open_one(connection) for connection in connections)))


async def _fleet(arguments: argparse.Namespace, read_start: Callable[[], Awaitable[float]]) -> dict[str, Any]:
    host, port = _address(arguments.url)
    tokens: list[str] = json.loads(Path(arguments.tokens).read_text())
    if len(tokens) < arguments.connections:
        raise SystemExit(f"{arguments.tokens} holds {len(tokens)} tokens, not {arguments.connections}")
    connections = [_Connection(host, port) for _ in range(arguments.connections)]
    opened = await _open_all(connections)
    print(f"ready {opened}", flush=True)
    start = await read_start()
    loop = asyncio.get_running_loop()
    started = loop.time() + (start - time.time())
    schedule = Schedule(start, arguments.connections, arguments.seconds)
    deadline = started + arguments.seconds + arguments.drain
    tally = _Tally(arguments.connections)
    cpu_before = _cpu_seconds()
    await asyncio.gather(
        *(
            _agent(i, tokens[i], connections[i], schedule, started, deadline, tally, arguments.timeout)
            for i in range(arguments.connections)
        )
    )
    return _output(tally, schedule, opened, started, _cpu_seconds() - cpu_before)


async def _idle(arguments: argparse.Namespace) -> dict[str, Any]:
    """`requests` posts from one connection, one at a time, each timed from its send."""
    host, port = _address(arguments.url)
    schedule = Schedule(float(math.floor(time.time())), 1, arguments.requests)
    connection = _Connection(host, port)
    tally = _Tally(1)
    loop = asyncio.get_running_loop()
    cpu_before = _cpu_seconds()
    for number in range(arguments.requests):
        sent = loop.time()
        tally.first_send = min(tally.first_send, sent)
        tally.last_send = sent
        request = request_bytes(host, arguments.token, schedule.moment(0, number), number)
        if await _post(connection, request, tally, 0, number, arguments.timeout) is not None:
            tally.latencies_ms[0].append((number, (loop.time() - sent) * 1000))
    connection.close()
    return _output(tally, schedule, 1, tally.first_send, _cpu_seconds() - cpu_before)


def _output(tally: _Tally, schedule: Schedule, opened: int, started: float, cpu_s: float) -> dict[str, Any]:
    return {
        "start": schedule.start,
        "connections": schedule.connections,
        "requests_per_connection": schedule.requests,
        "opened_before_start": opened,
        "sent": tally.sent,
        "not_sent": tally.not_sent,
        "acked": tally.acked,
        "latencies_ms": tally.latencies_ms,
        "send_lags_ms": tally.send_lags_ms,
        "statuses": {str(status): count for status, count in tally.statuses.items()},
        "errors": tally.errors,
        "not_stored_one": tally.not_stored_one,
        "late_sends": tally.late_sends,
        "bytes_received": tally.bytes_received,
        # The sending window on the schedule's clock: first send (from the start) and last send.
        "sending_s": max(0.0, tally.last_send - min(started, tally.first_send)),
        "generator_cpu_s": cpu_s,
    }


def _address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _raise_own_file_limit(needed: int) -> None:
    """The soft RLIMIT_NOFILE up to `needed` (within the hard limit): a connection is a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _read_start_line() -> float:
    """The start time, one line on stdin (read off the loop: nothing else runs before the start)."""
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line.strip():
        raise SystemExit("no start time on stdin")
    return float(line)


def _generator_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    idle = commands.add_parser("idle", help="one connection, one post at a time")
    idle.add_argument("url")
    idle.add_argument("--token", required=True, help="the session of the posts")
    idle.add_argument("--requests", type=int, default=w.FLEET_IDLE_REQUESTS)
    fleet = commands.add_parser("fleet", help="the agents, open loop")
    fleet.add_argument("url")
    fleet.add_argument("--tokens", required=True, help="a JSON list of sessions: agent i posts to the i-th")
    fleet.add_argument("--connections", type=int, default=w.FLEET_CONNECTIONS)
    fleet.add_argument("--seconds", type=int, default=w.FLEET_SECONDS, help="requests per agent")
    fleet.add_argument("--drain", type=float, default=DRAIN_SECONDS, help="seconds to send what is owed")
    for command in (idle, fleet):
        command.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help="seconds per answer")
        command.add_argument("--out", type=Path, required=True, help="where the JSON results go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = _generator_arguments(argv)
    if arguments.command == "fleet":
        _raise_own_file_limit(arguments.connections + SPARE_FILES)
        output = asyncio.run(_fleet(arguments, _read_start_line))
    else:
        output = asyncio.run(_idle(arguments))
    arguments.out.write_text(json.dumps(output))
    return 0


# The bench's side: starting the generator, reading its results ---------------------------------


@dataclass
class FleetResult(WrkResult):
    """What a generator run saw, in wrk's terms (requests = answers; sent_by_thread = sent per agent;
    acked = the times of the samples acknowledged by `{"stored": 1}`), and more; latencies in ms."""

    schedule: Schedule | None = None
    max_ms: float = 0.0
    # p99 of the requests after each agent's first: without the first request of each session on a
    # fresh server (read from the storage, its host registered), which is 1/seconds of all requests.
    p99_after_first_ms: float = 0.0
    sent: int = 0  # requests written to a connection
    late_sends: int = 0
    unsent: int = 0  # owed and not sent by the drain's end
    timeouts: int = 0
    not_stored_one: int = 0  # 2xx answers that did not say {"stored": 1}
    send_lag_p99_ms: float = 0.0  # the generator's own lateness: due -> sent, connection free
    # Achieved: the sends after the first ÷ the window from the first due time to the last send (sends
    # 1/N s apart over S s, as scheduled, make N per second).
    sent_per_second: float = 0.0
    generator_cpu_s: float = 0.0
    opened_before_start: int = 0
    connections: int = 0
    acked_requests: list[tuple[int, int]] = field(default_factory=list, repr=False)
    # Per agent, the numbers of its requests that never left (no connection, or past the drain).
    not_sent: list[list[int]] = field(default_factory=list, repr=False)

    def carried(self, moment: float) -> dict[str, float] | None:
        """The metrics that the request whose sample carries this time sent; None when no request that
        was sent carries it."""
        assert self.schedule is not None
        request = self.schedule.request_of(moment)
        if request is None or request[1] in self.not_sent[request[0]]:
            return None
        return w.agent_metrics(request[1])

    def acknowledged_times(self) -> set[float]:
        """The times of the samples whose requests were answered `{"stored": 1}`."""
        assert self.schedule is not None
        return {self.schedule.moment(agent, number) for agent, number in self.acked_requests}

    @property
    def errors(self) -> int:
        """Non-2xx answers, socket errors (connect, read), timeouts and unsent requests."""
        return self.not_ok + sum(self.socket_errors.values())


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` of 1) of the values; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def read_result(output: dict[str, Any]) -> FleetResult:
    """A FleetResult from a generator's JSON output."""
    schedule = Schedule(output["start"], output["connections"], output["requests_per_connection"])
    latencies = [latency for answers in output["latencies_ms"] for _, latency in answers]
    statuses = {int(status): count for status, count in output["statuses"].items()}
    acked = [(agent, number) for agent, numbers in enumerate(output["acked"]) for number in numbers]
    sent = sum(output["sent"])
    errors = output["errors"]
    sending = output["sending_s"]
    return FleetResult(
        duration_s=sending,
        requests=sum(statuses.values()),
        bytes_received=output["bytes_received"],
        statuses=statuses,
        socket_errors={kind: count for kind, count in errors.items() if count},
        p50_ms=percentile(latencies, 0.50),
        p90_ms=percentile(latencies, 0.90),
        p99_ms=percentile(latencies, 0.99),
        p95_ms=percentile(latencies, 0.95),
        sent_by_thread=dict(enumerate(output["sent"])),
        acked=[repr(schedule.moment(agent, number)) for agent, number in acked],
        schedule=schedule,
        max_ms=max(latencies, default=math.nan),
        p99_after_first_ms=percentile(
            [latency for answers in output["latencies_ms"] for number, latency in answers if number], 0.99
        ),
        sent=sent,
        late_sends=output["late_sends"],
        unsent=errors["unsent"],
        timeouts=errors["timeout"],
        not_stored_one=output["not_stored_one"],
        send_lag_p99_ms=percentile(output["send_lags_ms"], 0.99),
        sent_per_second=(sent - 1) / sending if sending > 0 else math.nan,
        generator_cpu_s=output["generator_cpu_s"],
        opened_before_start=output["opened_before_start"],
        connections=schedule.connections,
        acked_requests=acked,
        not_sent=output["not_sent"],
    )


def _command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "bench.fleet", *arguments]


def _environment() -> dict[str, str]:
    """The bench package's folder on the generator's path (it imports nothing of perfmon)."""
    python_path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(PACKAGE_ROOT)]))
    return {**os.environ, "PYTHONPATH": python_path}


def run_idle(url: str, token: str, *, requests: int, work_dir: Path, name: str) -> FleetResult:
    """`requests` sequential posts from one connection to the session, in a process of its own."""
    out = work_dir / f"{name}.json"
    command = _command("idle", url, "--token", token, "--requests", str(requests), "--out", str(out))
    try:
        finished = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=requests * TIMEOUT_SECONDS + 60,
            check=False,
            cwd=PACKAGE_ROOT,
            env=_environment(),
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"the idle posts of {name} did not finish in time") from None
    if finished.returncode != 0 or not out.exists():
        raise BenchError(f"the idle posts of {name} failed ({finished.returncode}):\n{finished.stderr}")
    return read_result(json.loads(out.read_text()))


def run_fleet(
    url: str,
    tokens: Sequence[str],
    *,
    seconds: int,
    work_dir: Path,
    name: str,
    drain: float = DRAIN_SECONDS,
    timeout: float = TIMEOUT_SECONDS,
) -> FleetResult:
    """One agent per token, each posting once a second for `seconds`, from a generator process of its
    own: it opens its connections, says `ready`, and is given a start time, the next whole second but
    one, so that every agent's first request is due after the start."""
    tokens_file = work_dir / f"{name}.tokens.json"
    tokens_file.write_text(json.dumps(list(tokens)))
    out = work_dir / f"{name}.json"
    log = work_dir / f"{name}.log"
    command = _command(
        "fleet", url, "--tokens", str(tokens_file), "--connections", str(len(tokens)),
        "--seconds", str(seconds), "--drain", str(drain), "--timeout", str(timeout), "--out", str(out),
    )  # fmt: skip
    with open(log, "wb") as errors:
        generator = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=PACKAGE_ROOT,
            env=_environment(),
        )
        try:
            assert generator.stdin is not None and generator.stdout is not None
            # It opens its connections first: a few seconds for a thousand.
            if select.select([generator.stdout], [], [], READY_TIMEOUT_SECONDS)[0]:
                ready = generator.stdout.readline()
            else:
                ready = b""
            if not ready.startswith(b"ready"):
                raise BenchError(f"the fleet generator of {name} did not start:\n{log.read_text()}")
            start = math.floor(time.time()) + 2
            generator.stdin.write(f"{start}\n".encode())
            generator.stdin.close()
            try:
                generator.wait(timeout=seconds + drain + timeout + 60)
            except subprocess.TimeoutExpired:
                raise BenchError(f"the fleet generator of {name} did not finish in time") from None
        finally:
            if generator.poll() is None:
                generator.kill()
                generator.wait()
    if generator.returncode != 0 or not out.exists():
        raise BenchError(f"the fleet generator of {name} failed ({generator.returncode}):\n{log.read_text()}")
    return read_result(json.loads(out.read_text()))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
