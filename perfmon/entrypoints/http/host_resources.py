"""The calls of PROTOCOL.md part 3, hosts and metrics: POST /samples, GET /samples, GET /hosts.

Thin as resources.py's: parse, call History, shape the answer. The wire names live here.
"""

from __future__ import annotations

from typing import Any

import falcon

from perfmon.domain.history import History
from perfmon.domain.model import Bucket, HostOverview, SampleSeries, TimeRange
from perfmon.entrypoints.http.errors import BadArguments
from perfmon.entrypoints.http.metric_parsing import metric_names, parse_metric_samples
from perfmon.entrypoints.http.parsing import (
    optional_choice_param,
    optional_float_param,
    read_json_object,
    require_string,
    required_param,
)
from perfmon.entrypoints.http.resources import csv_lines


class MetricSamples:
    """POST /samples stores one multi-metric sample or a batch, all or none; GET /samples reads 1..16
    metrics of the caller's session, another session of its user, or one of its user's hosts."""

    def __init__(self, history: History, max_body_bytes: int) -> None:
        self._history = history
        self._max_body_bytes = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """`{"hash", "time", "metrics"}` or `{"hash", "samples": [...]}` -> `{"stored": n}`."""
        body = read_json_object(req, self._max_body_bytes)
        token = require_string(body, "hash")
        samples = parse_metric_samples(body)
        # TooManySeries (past 256 metrics in the session) is an InvalidInput: a 400, nothing stored.
        self._history.record(token, samples)
        resp.media = {"stored": len(samples)}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """`{"payload": {metric: [{"timestamp", "value"}, ...]}}`, buckets with `step`, CSV of one metric."""
        token = required_param(req, "hash")
        metrics = metric_names(req)
        of_session, host = req.get_param("session"), req.get_param("host")
        if of_session is not None and host is not None:
            raise BadArguments("session and host do not combine")
        time_range = TimeRange(optional_float_param(req, "start_time"), optional_float_param(req, "cur_time"))
        step = optional_float_param(req, "step")
        as_csv = optional_choice_param(req, "format", ("json", "csv")) == "csv"
        if as_csv:
            if step is not None:
                raise BadArguments("step and format=csv do not combine")
            if len(metrics) > 1:
                raise BadArguments("format=csv takes one metric")
            samples = self._history.samples(token, time_range, of_session, metrics[0], host)
            # Only once the read has succeeded: an error answer is JSON, whatever was asked.
            resp.content_type = falcon.MEDIA_CSV
            resp.stream = csv_lines(samples, metrics[0])
            return
        payload: dict[str, list[dict[str, Any]]]
        if step is None:
            read = self._history.samples_of(token, metrics, time_range, of_session, host)
            payload = {metric: _points_document(series) for metric, series in read.items()}
        else:
            stepped = self._history.buckets_of(token, metrics, time_range, step, of_session, host)
            payload = {metric: [_bucket_document(b) for b in buckets] for metric, buckets in stepped.items()}
        resp.media = {"payload": payload}


def _points_document(series: SampleSeries) -> list[dict[str, Any]]:
    return [
        {"timestamp": moment, "value": value}
        for value, moment in zip(series.values, series.taken_at, strict=True)
    ]


def _bucket_document(bucket: Bucket) -> dict[str, Any]:
    return {
        "timestamp": bucket.start,
        "value": bucket.mean,
        "min": bucket.low,
        "max": bucket.high,
        "count": bucket.count,
    }


class Hosts:
    """GET /hosts: every host of the caller's user, by name, with its sessions, times and latest values."""

    def __init__(self, history: History) -> None:
        self._history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """`{"payload": [{"host", "sessions", "first", "last", "seen", "latest": {metric: value}}, ...]}` in
        code-point order of the names; times in epoch seconds, null (and `latest` `{}`) for a host without
        samples (PROTOCOL.md part 3)."""
        hosts = self._history.hosts(required_param(req, "hash"))
        resp.media = {"payload": [_host_document(host) for host in hosts]}


def _host_document(host: HostOverview) -> dict[str, Any]:
    return {
        "host": host.name,
        "sessions": host.sessions,
        "first": host.first,
        "last": host.last,
        "seen": host.seen,
        "latest": dict(host.latest),
    }
