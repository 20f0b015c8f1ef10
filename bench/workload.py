"""The shape of every benchmark: connection counts, sizes, and the samples the runs and the ceiling use."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

# post: single-sample POST /cpu, 16 keep-alive connections spread over 64 sessions.
POST_CONNECTIONS = 16
POST_SESSIONS = 64
# post-metrics: single-sample POST /samples carrying the agent's 12 metrics (PROTOCOL.md part 3's
# catalogue, in its order), from as many connections over as many fresh sessions as `post`, each session
# on a host of its own (an agent's).
POST_METRICS = (
    "cpu", "mem", "swap", "load1", "load5", "load15", "disk", "disk_read", "disk_write", "net_rx", "net_tx",
    "temp",
)  # fmt: skip
# post and post-metrics also run against `perfmon serve --workers POST_WORKERS`: that many processes.
POST_WORKERS = 2
# batch: POST /cpu of 1,000-sample batches from 4 connections into 16 sessions; the COPY ceiling
# copies the same rows from as many connections.
BATCH_SIZE = 1000
BATCH_CONNECTIONS = 4
BATCH_SESSIONS = 16
# get: GET /cpu of one session of 1,000 or 100,000 samples (and step=60), from 2 connections: few
# enough that p50 is the time to answer, not the time spent queueing behind other requests.
GET_SIZES = (1000, 100_000)
GET_CONNECTIONS = 2
GET_STEP = 60
# sessions: single-sample posts with the storage holding 100 or 10,000 sessions. Both runs post to
# a working set of 100 sessions (all of them, or every 100th), so that only the storage's size
# differs; the "cold" run posts to all 10,000 in turn, each one's first request after a start.
SESSIONS_COUNTS = (100, 10_000)
SESSIONS_WORKING_SET = 100
SESSIONS_CONNECTIONS = 16
# register and login: Argon2id-bound, a few connections are enough to fill the cores.
AUTH_CONNECTIONS = 4

# Times of the samples held for `get`: one a second from here (November 2023).
HISTORY_START = 1_700_000_000.0
# Times of the samples written by run r start at RUN_TIME_BASE + r * RUN_TIME_SPAN (2033 onwards): they
# never mix with the history, and a sample's time tells which run, wrk thread and request wrote it.
RUN_TIME_BASE = 2e9
RUN_TIME_SPAN = 1e8
# Within a run, wrk thread i writes times from base + i * THREAD_TIME_SPAN (workload.lua agrees).
THREAD_TIME_SPAN = 1e7


def history(count: int) -> list[tuple[float, float]]:
    """`count` (cpu, time) samples one second apart, as held by the `get` sessions and the ceiling."""
    return [(round((index * 37) % 1000 / 10, 1), HISTORY_START + index + 0.5) for index in range(count)]


def agent_metrics(request: int) -> dict[str, float]:
    """The metrics that a wrk thread's request number `request` (0, 1, ...) of `post-metrics` carries,
    as the server parses them from the JSON: workload.lua's builders.post_metrics writes the same numbers
    with the same formats, so the bench can check each stored value against its request's.

    Readings like an agent's (percentages with a decimal, load averages, bytes/s), each a function of
    the request number; the byte rates grow with it, so no two requests of a thread carry the same
    metrics. The sample's time, as in `post`, tells the thread and the request.
    """
    n = request
    readings = {
        "cpu": ("%.1f", (n % 1000) / 10),
        "mem": ("%.1f", 20 + (n % 600) / 10),
        "swap": ("%.1f", (n % 50) / 10),
        "load1": ("%.2f", (n % 400) / 100),
        "load5": ("%.2f", (n % 300) / 100),
        "load15": ("%.2f", (n % 200) / 100),
        "disk": ("%.1f", 40 + (n % 200) / 10),
        "disk_read": ("%d", (n % 10000) * 4096),
        "disk_write": ("%d", (n % 10000) * 8192 + 512),
        "net_rx": ("%.1f", 1000 + n * 3.5),
        "net_tx": ("%.2f", 800 + n * 1.25),
        "temp": ("%.1f", 35 + (n % 300) / 10),
    }
    return {name: float(text_format % value) for name, (text_format, value) in readings.items()}


def run_time_base(run: int) -> float:
    """The first time that run number `run` writes."""
    return RUN_TIME_BASE + run * RUN_TIME_SPAN


# history: a session of HISTORY_DAYS at 1 Hz beside one of the last RECENT_SECONDS, loaded through the
# adapters in batches of the API's limit, then read over HTTP. Reads of both go from GET_CONNECTIONS;
# HISTORY_READERS connections read both reads in turn while single posts go to another session.
HISTORY_DAYS = 30
RECENT_SECONDS = 600
RAW_REFERENCE = 1000  # the samples of the raw read the 30-day read is held against
HISTORY_READERS = 8
HISTORY_BATCH = 10_000
# The dashboard's chart is about this wide (CSS pixels) on a 1280-pixel screen; it asks for a bucket
# per pixel, rounded up to a round step (NICE_STEPS): 30 days -> 3600 s, 721 buckets.
PLOT_WIDTH = 1000
# perfmon/entrypoints/http/static/ranges.js's NICE_STEPS (seconds); past a day, whole days.
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def dashboard_step(seconds: float, plot_width: int = PLOT_WIDTH) -> int:
    """The step (seconds) the dashboard asks for to draw `seconds` of history (ranges.js stepFor)."""
    wanted = seconds / plot_width * (1 - 1e-9)
    for step in NICE_STEPS:
        if step >= wanted:
            return step
    return math.ceil(wanted / 86400) * 86400


def agent_history(end: float, count: int) -> Iterator[list[tuple[float, float]]]:
    """`count` (cpu, time) samples as an agent at 1 Hz sends them, oldest first, in batches of up to
    HISTORY_BATCH, the last taken at about `end` (seconds since the epoch).

    Like time.time() readings: sample k seconds before the last is at end - k plus a few milliseconds
    of scheduling jitter, every digit of the double significant; cpu to one decimal, as the agent's
    psutil reports it, a slow wander with noise and short bursts. Sample k's values depend on k alone,
    so the last samples of a long history are the samples of a short one.
    """
    blocks = math.ceil(count / HISTORY_BATCH)
    for block in reversed(range(blocks)):
        samples = _agent_block(end, block)
        oldest = min(count, (block + 1) * HISTORY_BATCH) - block * HISTORY_BATCH
        yield samples[HISTORY_BATCH - oldest :]


def _agent_block(end: float, block: int) -> list[tuple[float, float]]:
    """The HISTORY_BATCH samples taken block * HISTORY_BATCH .. + HISTORY_BATCH - 1 seconds before the
    last, oldest first; the same for every count."""
    rng = random.Random(f"perfmon-bench-agent-{block}")  # noqa: S311 (made-up readings, not secrets)
    level = rng.uniform(3.0, 30.0)
    samples = []
    for age in range((block + 1) * HISTORY_BATCH - 1, block * HISTORY_BATCH - 1, -1):
        level = min(60.0, max(1.0, level + rng.gauss(0.0, 0.4)))
        burst = rng.uniform(20.0, 70.0) if rng.random() < 0.03 else 0.0
        cpu = round(min(100.0, max(0.0, level + abs(rng.gauss(0.0, 2.5)) + burst)), 1)
        samples.append((cpu, end - age + rng.uniform(0.0005, 0.006)))
    return samples


# fleet: FLEET_CONNECTIONS agents, each a keep-alive connection to a session (and host) of its own, posting
# the agent's 12 metrics once a second for FLEET_SECONDS, open loop (bench/fleet.py); before them, on the
# same fresh server, FLEET_IDLE_REQUESTS single posts one at a time from one connection: the idle latency.
FLEET_CONNECTIONS = 1000
FLEET_SECONDS = 30
FLEET_IDLE_REQUESTS = 200

# The fleet's server runs with --connection-limit of at least this (twice the agents when more).
FLEET_CONNECTION_LIMIT = 2000
