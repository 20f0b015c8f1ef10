"""The shape of every benchmark: connection counts, sizes, and the samples the runs and the ceiling use."""

from __future__ import annotations

# post: single-sample POST /cpu, 16 keep-alive connections spread over 64 sessions.
POST_CONNECTIONS = 16
POST_SESSIONS = 64
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


def run_time_base(run: int) -> float:
    """The first time that run number `run` writes."""
    return RUN_TIME_BASE + run * RUN_TIME_SPAN
