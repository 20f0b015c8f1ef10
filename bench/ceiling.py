"""The ceiling: a bare Falcon app on the same waitress set-up as perfmon, which stores nothing.

`POST /cpu` reads and parses the JSON body and answers what perfmon answers, and so does `POST /samples`
(`{"stored": n}`, n the samples the body holds: 1 for a single sample); `GET /cpu` serialises
samples held in memory (`n=1000` or `n=100000`, optionally `step=60`: the buckets, computed at start)
to the same JSON as perfmon. It reads and writes JSON with the media handlers of perfmon's own app
(Falcon's defaults unless perfmon sets others), so what perfmon costs beyond it is the cost of its
validation, domain and storage, not of a JSON library. Started by the bench (bench/processes.py) as
`python -m bench.ceiling --threads 8`; it prints its address on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
from types import FrameType

import falcon

from perfmon.entrypoints.http.app import create_app
from perfmon.entrypoints.wsgi_server import create_server

from . import workload


class CeilingCpu:
    """POST parses and echoes, GET serialises in-memory samples: no validation, no storage."""

    def __init__(self) -> None:
        self._samples = {n: workload.history(n) for n in workload.GET_SIZES}
        self._buckets = {
            (n, step): _buckets(samples, step) for n, samples in self._samples.items() for step in (60.0,)
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.get_media()
        resp.media = {"payload": {"cpu": body["cpu"], "hash": body["hash"], "time": body["time"]}}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        n = req.get_param_as_int("n", default=workload.GET_SIZES[-1])
        step = req.get_param_as_float("step")
        if step is not None:
            resp.media = {
                "payload": [
                    {"timestamp": start, "cpu": mean, "min": low, "max": high, "count": count}
                    for start, mean, low, high, count in self._buckets[(n, step)]
                ]
            }
            return
        # The same per-request work as perfmon's resource: one dict per sample, then the media handler.
        resp.media = {"payload": [{"cpu": cpu, "timestamp": taken_at} for cpu, taken_at in self._samples[n]]}


class CeilingSamples:
    """POST /samples parses the body and answers as perfmon does, `{"stored": n}`: no validation, no
    storage (PROTOCOL.md part 3's answer to a single sample is `{"stored": 1}`)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.get_media()
        samples = body.get("samples")
        resp.media = {"stored": len(samples) if isinstance(samples, list) else 1}


def _buckets(samples: list[tuple[float, float]], step: float) -> list[tuple[float, float, float, float, int]]:
    grouped: dict[float, list[float]] = {}
    for cpu, taken_at in samples:
        grouped.setdefault(math.floor(taken_at / step) * step, []).append(cpu)
    return [
        (start, sum(values) / len(values), min(values), max(values), len(values))
        for start, values in sorted(grouped.items())
    ]


def _perfmon_media_handlers(app: falcon.App) -> None:
    """Give the app the JSON handlers of perfmon's app (built over placeholders: no request reaches it)."""
    try:
        perfmon_app = create_app(None, None, None, storage_name="none", check_storage=lambda: None)  # type: ignore[arg-type]
    except Exception as error:  # a changed create_app: say so, and measure with Falcon's defaults
        print(f"ceiling: perfmon's media handlers unavailable ({error!r})", file=sys.stderr)
        return
    for options, source in (
        (app.req_options, perfmon_app.req_options),
        (app.resp_options, perfmon_app.resp_options),
    ):
        options.media_handlers[falcon.MEDIA_JSON] = source.media_handlers[falcon.MEDIA_JSON]


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # waitress logs a WARNING for each request that finds every thread busy; a ceiling logs nothing.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args()
    app = falcon.App()
    _perfmon_media_handlers(app)
    app.add_route("/cpu", CeilingCpu())
    app.add_route("/samples", CeilingSamples())
    server = create_server(
        app, host="127.0.0.1", port=arguments.port, threads=arguments.threads, max_body_bytes=1024 * 1024
    )
    print(f"ceiling listening on http://127.0.0.1:{server.effective_port}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
