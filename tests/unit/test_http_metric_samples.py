"""POST /samples (PROTOCOL.md part 3) through Falcon's test client over in-memory storage: one sample or a
batch of multi-metric samples, all or nothing, the 400 naming the first bad sample or metric."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from falcon.testing import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfmon.domain.model import CATALOGUE, NON_NEGATIVE_METRICS
from tests.unit.api_calls import UNKNOWN, read_samples, register

# Names up to 24 characters keep a generated batch within the unit client's 4 KiB body limit.
METRIC_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,23}", fullmatch=True)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
TIMES = st.floats(min_value=0, max_value=1e11, exclude_max=True)
# Property tests share the client and register a fresh user per example.
_users = itertools.count()
SHARED_CLIENT = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def post(client: TestClient, token: str, **body: Any) -> Any:
    return client.simulate_post("/samples", json={"hash": token, **body})


def read(client: TestClient, token: str, *metrics: str, **params: str) -> dict[str, Any]:
    result = client.simulate_get("/samples", params={"hash": token, "metric": list(metrics), **params})
    assert result.status_code == 200, result.text
    return result.json["payload"]


def test_a_single_sample_of_several_metrics_is_stored_and_read_back(client: TestClient) -> None:
    token = register(client)
    result = post(client, token, time=100.5, metrics={"cpu": 12.5, "mem": 41.0, "temp": -3.25})
    assert (result.status_code, result.json) == (200, {"stored": 1})
    assert read(client, token, "mem", "temp") == {
        "mem": [{"timestamp": 100.5, "value": 41.0}],
        "temp": [{"timestamp": 100.5, "value": -3.25}],
    }


def test_a_batch_is_stored_whole_and_counted(client: TestClient) -> None:
    token = register(client)
    batch = [{"time": 10.0 + i, "metrics": {"load1": i / 4, "net_rx": 1000.0 * i}} for i in range(30)]
    assert post(client, token, samples=batch).json == {"stored": 30}
    assert read(client, token, "load1")["load1"] == [
        {"timestamp": 10.0 + i, "value": i / 4} for i in range(30)
    ]


def test_cpu_posted_as_a_metric_shows_in_get_cpu_and_part_1_posts_show_as_the_metric(
    client: TestClient,
) -> None:
    token = register(client)
    post(client, token, time=1.0, metrics={"cpu": 5.5, "mem": 1.0})
    client.simulate_post("/cpu", json={"hash": token, "cpu": 7.25, "time": 2.0})
    assert read_samples(client, token) == [{"cpu": 5.5, "timestamp": 1.0}, {"cpu": 7.25, "timestamp": 2.0}]
    assert read(client, token, "cpu")["cpu"] == [
        {"timestamp": 1.0, "value": 5.5},
        {"timestamp": 2.0, "value": 7.25},
    ]


def test_an_integer_value_is_stored_as_the_float_it_stands_for(client: TestClient) -> None:
    token = register(client)
    post(client, token, time=3, metrics={"disk": 41})
    result = client.simulate_get("/samples", params={"hash": token, "metric": "disk"})
    assert result.content == b'{"payload":{"disk":[{"timestamp":3.0,"value":41.0}]}}'


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"time": 1, "metrics": {"mem": -1}}, "metrics.mem must be a finite number >= 0"),
        ({"time": 1, "metrics": {"mem": True}}, "metrics.mem must be a finite number"),
        ({"time": 1, "metrics": {"temp": "20"}}, "metrics.temp must be a finite number"),
        ({"time": 1, "metrics": {"x": None}}, "metrics.x must be a finite number"),
        ({"time": 1, "metrics": {"Mem": 1}}, "metrics: 'Mem' is not a metric name"),
        ({"time": 1, "metrics": {}}, "metrics must hold 1..64 metrics"),
        ({"time": 1, "metrics": {f"m{i}": 1 for i in range(65)}}, "metrics must hold 1..64 metrics"),
        ({"time": 1, "metrics": [1]}, "metrics must be an object"),
        ({"time": 1}, "metrics is missing"),
        ({"metrics": {"cpu": 1}}, "time is missing"),
        ({"time": "1", "metrics": {"cpu": 1}}, "time must be a number"),
        ({"time": False, "metrics": {"cpu": 1}}, "time must be a number"),
        ({"time": 1e11, "metrics": {"cpu": 1}}, "time must be a finite number in [0, 1e11)"),
    ],
)
def test_a_bad_single_sample_is_400_naming_the_field_and_stores_nothing(
    client: TestClient, body: dict[str, Any], detail: str
) -> None:
    token = register(client)
    result = post(client, token, **body)
    assert result.status_code == 400 and result.json["reason"] == "Bad arguments"
    assert result.json["detail"].startswith(detail)
    assert read(client, token, "cpu", "mem") == {"cpu": [], "mem": []}


@pytest.mark.parametrize(
    # Not `samples`: that name is conftest's sample repository.
    ("batch", "detail"),
    [
        (
            [{"time": 1, "metrics": {"mem": 1}}] * 3 + [{"time": 1, "metrics": {"cpu": 1, "mem": -1}}],
            "samples[3].metrics.mem must be a finite number >= 0",
        ),
        ([{"time": 1, "metrics": {"cpu": 1}}, 7], "samples[1] must be an object"),
        ([{"time": 1, "metrics": {"cpu": 1}}, {"metrics": {"cpu": 1}}], "samples[1].time is missing"),
        ([], "samples must be a list of 1..10000 samples"),
        ({"time": 1, "metrics": {"cpu": 1}}, "samples must be a list of 1..10000 samples"),
    ],
)
def test_a_bad_batch_names_the_first_bad_sample_or_metric_and_stores_none(
    client: TestClient, batch: Any, detail: str
) -> None:
    token = register(client)
    result = post(client, token, samples=batch)
    assert result.status_code == 400
    assert result.json["reason"].startswith(f"Bad arguments: {detail}")
    assert result.json["reason"] == f"Bad arguments: {result.json['detail']}"
    assert read(client, token, "cpu", "mem") == {"cpu": [], "mem": []}


def test_a_257th_metric_in_a_session_is_400_and_stores_nothing(client: TestClient) -> None:
    token = register(client)
    for chunk in range(4):
        metrics = {f"m{chunk * 64 + i}": 1.0 for i in range(64)}
        assert post(client, token, time=1.0, metrics=metrics).status_code == 200
    result = post(client, token, samples=[{"time": 2.0, "metrics": {"m0": 2.0, "one_more": 1.0}}])
    assert (result.status_code, result.json["reason"]) == (400, "Bad arguments")
    assert "256" in result.json["detail"]
    assert read(client, token, "m0")["m0"] == [{"timestamp": 1.0, "value": 1.0}]


def test_posting_to_an_unknown_session_is_401_as_post_cpu(client: TestClient) -> None:
    result = post(client, UNKNOWN, time=1, metrics={"cpu": 1})
    assert (result.status_code, result.json) == (
        401,
        {"reason": "Not authorized user try to post data, please login"},
    )


def test_a_name_of_64_characters_is_a_metric_and_one_of_65_is_not(client: TestClient) -> None:
    token = register(client)
    longest = "m" + "_" * 62 + "9"
    assert post(client, token, time=1.0, metrics={longest: 1.5}).json == {"stored": 1}
    assert read(client, token, longest) == {longest: [{"timestamp": 1.0, "value": 1.5}]}
    assert post(client, token, time=1.0, metrics={longest + "x": 1.5}).status_code == 400


def test_a_body_without_a_hash_is_400(client: TestClient) -> None:
    result = client.simulate_post("/samples", json={"time": 1, "metrics": {"cpu": 1}})
    assert (result.status_code, result.json["detail"]) == (400, "hash is missing")


def _metric_values() -> st.SearchStrategy[dict[str, float]]:
    """1..4 metrics, catalogue names or any valid name, each with a value its name allows."""
    names = st.one_of(st.sampled_from(sorted(CATALOGUE)), METRIC_NAMES)
    return st.dictionaries(names, FINITE, min_size=1, max_size=4).map(
        lambda metrics: {n: abs(v) if n in NON_NEGATIVE_METRICS else v for n, v in metrics.items()}
    )


@SHARED_CLIENT
@given(batch=st.lists(st.tuples(TIMES, _metric_values()), min_size=1, max_size=10))
def test_any_valid_batch_reads_back_per_metric_exactly_in_time_order(
    client: TestClient, batch: list[tuple[float, dict[str, float]]]
) -> None:
    token = register(client, f"prop-{next(_users)}")
    samples = [{"time": moment, "metrics": metrics} for moment, metrics in batch]
    assert post(client, token, samples=samples).json == {"stored": len(batch)}
    names = sorted({name for _, metrics in batch for name in metrics})[:16]
    expected = {
        name: [
            {"timestamp": moment, "value": metrics[name]}
            # A stable sort: equal times keep their arrival order.
            for moment, metrics in sorted(batch, key=lambda sample: sample[0])
            if name in metrics
        ]
        for name in names
    }
    assert read(client, token, *names) == expected


NOT_NUMBERS = st.one_of(st.booleans(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=1))


@SHARED_CLIENT
@given(
    size=st.integers(min_value=1, max_value=30),
    data=st.data(),
)
def test_the_first_value_that_is_no_number_is_named_exactly_and_nothing_is_stored(
    client: TestClient, size: int, data: st.DataObject
) -> None:
    token = register(client, f"prop-{next(_users)}")
    samples: list[dict[str, Any]] = [
        {"time": float(i), "metrics": {"cpu": 1.0, "mem": 2.0}} for i in range(size)
    ]
    bad_at = data.draw(st.integers(min_value=0, max_value=size - 1))
    metric = data.draw(st.sampled_from(["cpu", "mem"]))
    samples[bad_at]["metrics"] = {**samples[bad_at]["metrics"], metric: data.draw(NOT_NUMBERS)}
    for later in range(bad_at + 1, size):  # later faults must not be the one named
        samples[later]["metrics"] = {"cpu": "bad"}
    result = post(client, token, samples=samples)
    assert result.status_code == 400
    assert result.json["detail"] == f"samples[{bad_at}].metrics.{metric} must be a finite number"
    assert read(client, token, "cpu") == {"cpu": []}


@SHARED_CLIENT
@given(name=st.text(min_size=1, max_size=70).filter(lambda text: not _is_metric_name(text)))
def test_a_name_outside_the_metric_rule_is_400_and_named(client: TestClient, name: str) -> None:
    token = register(client, f"prop-{next(_users)}")
    result = post(client, token, time=1.0, metrics={name: 1.0})
    assert result.status_code == 400
    assert (
        result.json["detail"]
        == f"metrics: {name!r} is not a metric name: it must match [a-z][a-z0-9_]{{0,63}}"
    )


def _is_metric_name(text: str) -> bool:
    return re.fullmatch(r"[a-z][a-z0-9_]{0,63}", text) is not None
