"""Reading the bodies and queries of PROTOCOL.md part 3 (POST /samples, GET /samples) strictly.

POST /samples is the agent's hot path: each sample is one walk over its metrics (metric_sample), and its
dict is stored as parsed unless a value must become a float. Locating a failure (`samples[3].metrics.mem
...`) costs something only when there is one.
"""

from __future__ import annotations

from typing import Any

import falcon

from perfmon.domain.errors import InvalidInput
from perfmon.domain.model import (
    MAX_BATCH_SIZE,
    MAX_METRICS_PER_SAMPLE,
    MAX_TIMESTAMP,
    Sample,
    check_metric_name,
    metric_sample,
)
from perfmon.entrypoints.http.errors import BadArguments
from perfmon.entrypoints.http.parsing import require_number

# PROTOCOL.md part 3: GET /samples reads 1..16 metrics at once.
MAX_METRICS_PER_READ = 16
_ONLY_FLOATS = {float}
_SAMPLE_SHAPE = "must be an object with a number time and an object metrics"


def parse_metric_samples(body: dict[str, Any]) -> list[Sample]:
    """The samples of a POST /samples body: `{"time", "metrics"}` or `{"samples": [...]}` (1..10,000).

    A body with a `samples` member is a batch, whatever else it holds (as POST /cpu). A 400 names the
    first bad sample or metric: `Bad arguments: samples[3].metrics.mem must be a finite number >= 0` in a
    batch (the detail the same without the prefix, as part 2's batches), `metrics.mem ...` alone."""
    if "samples" not in body:
        return [_metric_sample(body)]
    items = body["samples"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_SIZE:
        raise BadArguments(f"samples must be a list of 1..{MAX_BATCH_SIZE} samples", in_reason=True)
    samples = []
    for index, item in enumerate(items):
        try:
            samples.append(_metric_sample(item))
        except BadArguments as error:
            raise BadArguments(_in_sample(index, error.detail), in_reason=True) from None
    return samples


def _in_sample(index: int, detail: str) -> str:
    # A whole-sample rule reads `samples[3] must be ...`; a field's `samples[3].time ...`.
    where = f"samples[{index}]"
    return f"{where} {detail}" if detail.startswith("must ") else f"{where}.{detail}"


def _metric_sample(item: Any) -> Sample:
    """One `{"time": t, "metrics": {name: value, ...}}` as a Sample; BadArguments locating the rule."""
    if not isinstance(item, dict):
        raise BadArguments(_SAMPLE_SHAPE)
    taken_at = require_number(item, "time")
    metrics = item.get("metrics")
    if not isinstance(metrics, dict):
        raise BadArguments("metrics " + ("is missing" if "metrics" not in item else "must be an object"))
    try:
        sample = metric_sample(taken_at, metrics)
    except InvalidInput as error:
        raise BadArguments(_located(taken_at, metrics, str(error))) from None
    if set(map(type, metrics.values())) == _ONLY_FLOATS:
        return sample
    # An integer in JSON (`"mem": 41`) is stored as the float it stands for, as POST /cpu stores cpu: every
    # storage then answers 41.0, and a copy is made only for such a sample.
    return Sample.of_checked(taken_at, {name: float(value) for name, value in metrics.items()})


def _located(taken_at: float, metrics: dict[str, Any], rule: str) -> str:
    """The domain's rule (`mem must be ...`) with the field it is about (`metrics.mem must be ...`).

    metric_sample checks the time, then the number of metrics, then each metric in order: the first
    that fails is the one its message names."""
    if not 0 <= taken_at < MAX_TIMESTAMP:
        return rule  # "time must be ...": already the field's name
    if not 1 <= len(metrics) <= MAX_METRICS_PER_SAMPLE:
        return rule  # "metrics must hold 1..64 metrics"
    if rule.startswith("'") or rule.startswith('"'):
        return f"metrics: {rule}"  # a bad name, quoted: it may hold any character
    return f"metrics.{rule}"


def metric_names(req: falcon.Request) -> list[str]:
    """The `metric` query parameters (repeated, 1..16 names), each checked.

    A name given twice is read once (the payload is an object: one key per name), in the order of first
    appearance; the limit counts distinct names."""
    names = list(dict.fromkeys(req.get_param_as_list("metric") or ()))
    if not names:
        raise BadArguments("metric is missing")
    if len(names) > MAX_METRICS_PER_READ:
        raise BadArguments(f"metric may be given 1..{MAX_METRICS_PER_READ} times")
    for name in names:
        try:
            check_metric_name(name)
        except InvalidInput:
            # Name it, as POST /samples does: among up to 16 metrics the reader should not have to guess.
            raise BadArguments(
                f"metric {name!r} is not a metric name: it must match [a-z][a-z0-9_]{{0,63}}"
            ) from None
    return names
