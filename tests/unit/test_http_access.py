"""Access over HTTP (PROTOCOL.md part 4) through Falcon's test client over in-memory storage: POST /logout,
POST /keys, GET /keys, DELETE /keys/{id}, POST /login with a key, and what each scope may do.

Every failure is checked with its exact status and reason; every 400 with a detail naming the field. The
order of answers is 400 (malformed), then 401, then 403, then 404."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from falcon.testing import Result, TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfmon.domain.model import is_key_id, is_key_text
from tests.fakes import FixedClock
from tests.unit.api_calls import UNKNOWN, register

FORBIDDEN = {"reason": "Forbidden"}
NO_SUCH_KEY = {"reason": "No such key"}
WRONG_CREDENTIALS = {"reason": "Wrong credentials or user is not registered"}
POST_401 = {"reason": "Not authorized user try to post data, please login"}
GET_401 = {"reason": "Not authorized user try to get data, please login"}
# A key of the right form that no user has (SequentialKeys' keys end in digits, not "Z").
NO_KEY = "pmk_" + "Z" * 43


def answer(result: Result) -> tuple[int, Any]:
    return result.status_code, result.json


def is_bad_arguments(result: Result, field: str) -> bool:
    """A protocol 400 whose detail names the field."""
    body = result.json
    return result.status_code == 400 and body["reason"] == "Bad arguments" and field in body.get("detail", "")


def make_key(client: TestClient, token: str, scope: str = "ingest", name: str = "web-1 agent") -> Any:
    result = client.simulate_post("/keys", json={"hash": token, "scope": scope, "name": name})
    assert result.status_code == 200, result.text
    return result.json


def key_login(client: TestClient, key: str, **extra: Any) -> Result:
    return client.simulate_post("/login", json={"key": key, **extra})


def key_session(client: TestClient, key: str, **extra: Any) -> str:
    result = key_login(client, key, **extra)
    assert result.status_code == 200, result.text
    return result.json["hash"]


def listed(client: TestClient, token: str) -> list[dict[str, Any]]:
    result = client.simulate_get("/keys", params={"hash": token})
    assert result.status_code == 200, result.text
    return result.json["payload"]


def revoke(client: TestClient, token: str, key_id: str) -> Result:
    return client.simulate_delete(f"/keys/{key_id}", params={"hash": token})


def post_cpu(client: TestClient, token: str, moment: float = 1.0) -> Result:
    return client.simulate_post("/cpu", json={"hash": token, "cpu": 5.0, "time": moment})


def post_batch(client: TestClient, token: str) -> Result:
    return client.simulate_post("/cpu", json={"hash": token, "samples": [{"cpu": 1.0, "time": 2.0}]})


def post_metrics(client: TestClient, token: str) -> Result:
    return client.simulate_post("/samples", json={"hash": token, "time": 3.0, "metrics": {"mem": 4.0}})


def reads(client: TestClient, token: str) -> dict[str, Result]:
    """Every read of the protocol with this hash, by its path."""
    return {
        "/cpu": client.simulate_get("/cpu", params={"hash": token}),
        "/samples": client.simulate_get("/samples", params={"hash": token, "metric": "cpu"}),
        "/sessions": client.simulate_get("/sessions", params={"hash": token}),
        "/hosts": client.simulate_get("/hosts", params={"hash": token}),
    }


def logout(client: TestClient, token: str) -> Result:
    return client.simulate_post("/logout", json={"hash": token})


# --- POST /logout -------------------------------------------------------------------------------------


def test_logout_answers_an_empty_object_and_the_hash_is_401_on_every_call_after(client: TestClient) -> None:
    token = register(client)
    assert answer(logout(client, token)) == (200, {})
    for path, result in reads(client, token).items():
        assert answer(result) == (401, GET_401), path
    assert answer(client.simulate_get("/keys", params={"hash": token})) == (401, GET_401)
    assert answer(post_cpu(client, token)) == (401, POST_401)
    assert answer(post_batch(client, token)) == (401, POST_401)
    assert answer(post_metrics(client, token)) == (401, POST_401)
    made = client.simulate_post("/keys", json={"hash": token, "scope": "read", "name": "display"})
    assert answer(made) == (401, POST_401)
    assert answer(revoke(client, token, "0000000000000001")) == (401, POST_401)
    assert answer(logout(client, token)) == (401, POST_401)


def test_a_logged_out_sessions_samples_are_read_through_another_session_by_session_and_host(
    client: TestClient,
) -> None:
    token = client.simulate_post("/register", json={"user": "alice", "passwd": "pw", "host": "web-1"}).json[
        "hash"
    ]
    assert post_cpu(client, token, 7.0).status_code == 200
    assert logout(client, token).status_code == 200
    other = client.simulate_post("/login", json={"user": "alice", "passwd": "pw"}).json["hash"]
    by_session = client.simulate_get("/cpu", params={"hash": other, "session": token})
    assert by_session.json == {"payload": [{"cpu": 5.0, "timestamp": 7.0}]}
    by_host = client.simulate_get("/samples", params={"hash": other, "host": "web-1", "metric": "cpu"})
    assert by_host.json == {"payload": {"cpu": [{"timestamp": 7.0, "value": 5.0}]}}
    assert token in [entry["session"] for entry in reads(client, other)["/sessions"].json["payload"]]


def test_logout_closes_only_that_session(client: TestClient) -> None:
    first = register(client)
    second = client.simulate_post("/login", json={"user": "alice", "passwd": "pw"}).json["hash"]
    assert logout(client, first).status_code == 200
    assert post_cpu(client, second).status_code == 200


@pytest.mark.parametrize("scope", ["ingest", "read"])
def test_a_key_session_may_log_out(client: TestClient, scope: str) -> None:
    owner = register(client)
    token = key_session(client, make_key(client, owner, scope)["key"])
    assert answer(logout(client, token)) == (200, {})
    assert answer(post_cpu(client, token)) == (401, POST_401)
    # The key itself still opens sessions: logging out ends one session, not the key.
    assert key_login(client, make_key(client, owner, scope)["key"]).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{}", "hash"),
        ('{"hash": 7}', "hash"),
        ('{"hash": null}', "hash"),
        ('{"hash": "not-a-uuid"}', "hash"),
        ('["hash"]', "object"),
        ("{not json", "JSON"),
        ("", "JSON"),
    ],
)
def test_logout_of_a_malformed_body_is_400_naming_what(client: TestClient, body: str, field: str) -> None:
    result = client.simulate_post("/logout", body=body, content_type="application/json")
    assert is_bad_arguments(result, field), result.text


def test_logout_of_an_unknown_hash_is_401(client: TestClient) -> None:
    assert answer(logout(client, UNKNOWN)) == (401, POST_401)


# --- POST /keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["ingest", "read"])
def test_make_key_answers_id_key_scope_name_and_created(
    client: TestClient, clock: FixedClock, scope: str
) -> None:
    token = register(client)
    made = make_key(client, token, scope, "rack 4 / web-1")
    assert set(made) == {"id", "key", "scope", "name", "created"}
    assert is_key_id(made["id"]) and is_key_text(made["key"])
    assert (made["scope"], made["name"], made["created"]) == (scope, "rack 4 / web-1", clock.now)


def test_the_answer_that_holds_a_key_may_be_stored_by_no_cache(client: TestClient) -> None:
    token = register(client)
    made = client.simulate_post("/keys", json={"hash": token, "scope": "ingest", "name": "web-1"})
    assert made.status_code == 200
    assert made.headers["Cache-Control"] == "no-store"


def test_every_key_made_is_a_new_key_with_a_new_id(client: TestClient) -> None:
    token = register(client)
    made = [make_key(client, token, "read", "same name") for _ in range(3)]
    assert len({entry["key"] for entry in made}) == len({entry["id"] for entry in made}) == 3


SCOPE_FAILURES = [None, "", "all", "INGEST", "write", 1, True, ["read"], {"scope": "read"}]
NAME_FAILURES = [None, "", "x" * 129, "tab\there", "new\nline", "nul\x00", 7, False, ["name"]]


@pytest.mark.parametrize("scope", SCOPE_FAILURES)
def test_make_key_with_a_bad_scope_is_400_naming_scope(client: TestClient, scope: Any) -> None:
    token = register(client)
    result = client.simulate_post("/keys", json={"hash": token, "scope": scope, "name": "n"})
    assert is_bad_arguments(result, "scope"), result.text
    assert listed(client, token) == []


def test_make_key_without_a_scope_is_400_naming_scope(client: TestClient) -> None:
    token = register(client)
    assert is_bad_arguments(client.simulate_post("/keys", json={"hash": token, "name": "n"}), "scope")


@pytest.mark.parametrize("name", NAME_FAILURES)
def test_make_key_with_a_bad_name_is_400_naming_name(client: TestClient, name: Any) -> None:
    token = register(client)
    result = client.simulate_post("/keys", json={"hash": token, "scope": "read", "name": name})
    assert is_bad_arguments(result, "name"), result.text
    assert listed(client, token) == []


def test_make_key_without_a_name_is_400_naming_name(client: TestClient) -> None:
    token = register(client)
    assert is_bad_arguments(client.simulate_post("/keys", json={"hash": token, "scope": "read"}), "name")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "read", "name": "n"}, "hash"),
        ({"hash": 1, "scope": "read", "name": "n"}, "hash"),
        ({"hash": "not-a-uuid", "scope": "read", "name": "n"}, "hash"),
        (["hash"], "object"),
    ],
)
def test_make_key_with_a_bad_hash_or_body_is_400(client: TestClient, body: Any, field: str) -> None:
    result = client.simulate_post("/keys", json=body)
    assert is_bad_arguments(result, field), result.text


def test_make_key_for_an_unknown_hash_is_401(client: TestClient) -> None:
    result = client.simulate_post("/keys", json={"hash": UNKNOWN, "scope": "read", "name": "n"})
    assert answer(result) == (401, POST_401)


@pytest.mark.parametrize("scope", ["ingest", "read"])
def test_a_key_session_cannot_make_list_or_revoke_keys(client: TestClient, scope: str) -> None:
    owner = register(client)
    made = make_key(client, owner, scope)
    token = key_session(client, made["key"])
    attempt = client.simulate_post("/keys", json={"hash": token, "scope": "ingest", "name": "more"})
    assert answer(attempt) == (403, FORBIDDEN)
    assert answer(client.simulate_get("/keys", params={"hash": token})) == (403, FORBIDDEN)
    assert answer(revoke(client, token, made["id"])) == (403, FORBIDDEN)
    assert [entry["id"] for entry in listed(client, owner)] == [made["id"]]


def test_a_malformed_body_is_400_before_an_unknown_hash_is_401_or_a_key_session_403(
    client: TestClient,
) -> None:
    owner = register(client)
    token = key_session(client, make_key(client, owner)["key"])
    for who in (UNKNOWN, token):
        result = client.simulate_post("/keys", json={"hash": who, "scope": "all", "name": "n"})
        assert is_bad_arguments(result, "scope"), result.text
        result = client.simulate_post("/keys", json={"hash": who, "scope": "read", "name": ""})
        assert is_bad_arguments(result, "name"), result.text
    assert is_bad_arguments(client.simulate_get("/keys"), "hash")
    assert is_bad_arguments(client.simulate_delete("/keys/0000000000000001"), "hash")
    assert is_bad_arguments(client.simulate_post("/logout", json={}), "hash")


# Any text of 1..128 characters without control characters (categories Cc and Cs) is a key name.
KEY_NAMES = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=128)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=KEY_NAMES, scope=st.sampled_from(["ingest", "read"]))
def test_any_key_name_is_data_made_and_listed_as_given(client: TestClient, name: str, scope: str) -> None:
    token = register(client, f"names-{next(_users)}")
    made = make_key(client, token, scope, name)
    assert made["name"] == name
    assert [(entry["name"], entry["scope"]) for entry in listed(client, token)] == [(name, scope)]


_users = itertools.count()
# Bodies of any JSON shape, so that every field takes any type and the unknown ones are ignored.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
KEY_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "scope": st.sampled_from(["ingest", "read"]) | JSON_VALUES,
        "name": KEY_NAMES | JSON_VALUES,
        "extra": JSON_VALUES,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=KEY_BODIES, who=st.sampled_from(["password", "key", "unknown", "absent", "bad"]))
def test_any_make_key_body_is_a_key_or_one_json_error_in_the_protocols_order(
    client: TestClient, body: dict[str, Any], who: str
) -> None:
    owner = register(client, f"bodies-{next(_users)}")
    hashes = {
        "password": owner,
        "key": key_session(client, make_key(client, owner)["key"]),
        "unknown": UNKNOWN,
        "bad": "not a uuid",
    }
    if who in hashes:
        body = {**body, "hash": hashes[who]}
    result = client.simulate_post("/keys", body=json.dumps(body), content_type="application/json")
    valid_body = body.get("scope") in ("ingest", "read") and _is_key_name(body.get("name"))
    if not valid_body or who in ("absent", "bad"):
        assert (
            result.status_code == 400 and result.json["reason"] == "Bad arguments" and result.json["detail"]
        )
    elif who == "unknown":
        assert answer(result) == (401, POST_401)
    elif who == "key":
        assert answer(result) == (403, FORBIDDEN)
    else:
        assert result.status_code == 200 and result.json["name"] == body["name"]


def _is_key_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and 1 <= len(name) <= 128
        and not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in name)
    )


# --- GET /keys ----------------------------------------------------------------------------------------


def test_list_keys_gives_the_users_keys_oldest_first_without_the_keys(
    client: TestClient, clock: FixedClock
) -> None:
    token = register(client)
    made = []
    for scope, name in [("ingest", "web-1"), ("read", "wall"), ("ingest", "web-2")]:
        made.append(make_key(client, token, scope, name))
        clock.now += 10
    assert listed(client, token) == [
        {
            "id": entry["id"],
            "scope": entry["scope"],
            "name": entry["name"],
            "created": entry["created"],
            "last_used": None,
        }
        for entry in made
    ]
    assert all(
        entry["key"] not in client.simulate_get("/keys", params={"hash": token}).text for entry in made
    )


def test_list_keys_of_a_user_without_keys_is_empty(client: TestClient) -> None:
    assert listed(client, register(client)) == []


def test_each_user_lists_only_their_own_keys(client: TestClient) -> None:
    alice, bob = register(client, "alice"), register(client, "bob")
    mine = make_key(client, alice, "read", "alice's")
    theirs = make_key(client, bob, "read", "bob's")
    assert [entry["id"] for entry in listed(client, alice)] == [mine["id"]]
    assert [entry["id"] for entry in listed(client, bob)] == [theirs["id"]]


def test_any_password_session_of_the_user_lists_the_same_keys(client: TestClient) -> None:
    first = register(client)
    made = make_key(client, first)
    second = client.simulate_post("/login", json={"user": "alice", "passwd": "pw"}).json["hash"]
    assert [entry["id"] for entry in listed(client, second)] == [made["id"]]


def test_last_used_is_null_until_a_login_with_the_key_then_its_time(
    client: TestClient, clock: FixedClock
) -> None:
    token = register(client)
    made = make_key(client, token)
    assert listed(client, token)[0]["last_used"] is None
    clock.now += 100
    session = key_session(client, made["key"])
    assert listed(client, token)[0]["last_used"] == clock.now
    # The key's sessions' requests count as its use too, kept to within a minute.
    clock.now += 61
    assert post_cpu(client, session).status_code == 200
    assert listed(client, token)[0]["last_used"] == clock.now


@pytest.mark.parametrize("params", [{}, {"user_hash": UNKNOWN}, {"hash": "nope"}])
def test_list_keys_without_a_well_formed_hash_is_400_naming_hash(
    client: TestClient, params: dict[str, str]
) -> None:
    assert is_bad_arguments(client.simulate_get("/keys", params=params), "hash")


def test_list_keys_for_an_unknown_hash_is_401(client: TestClient) -> None:
    assert answer(client.simulate_get("/keys", params={"hash": UNKNOWN})) == (401, GET_401)


# --- DELETE /keys/{id} --------------------------------------------------------------------------------


def test_revoke_answers_an_empty_object_and_the_key_leaves_the_list(client: TestClient) -> None:
    token = register(client)
    kept, revoked = make_key(client, token, "read", "kept"), make_key(client, token, "ingest", "gone")
    assert answer(revoke(client, token, revoked["id"])) == (200, {})
    assert [entry["id"] for entry in listed(client, token)] == [kept["id"]]


def test_a_revoked_key_opens_no_session_and_its_sessions_are_401(client: TestClient) -> None:
    owner = register(client)
    made = make_key(client, owner, "ingest")
    sessions = [key_session(client, made["key"]), key_session(client, made["key"], host="web-1")]
    assert revoke(client, owner, made["id"]).status_code == 200
    assert answer(key_login(client, made["key"])) == (401, WRONG_CREDENTIALS)
    for token in sessions:
        assert answer(post_cpu(client, token)) == (401, POST_401)
        assert answer(post_metrics(client, token)) == (401, POST_401)
        assert answer(logout(client, token)) == (401, POST_401)
    # The user's password sessions are untouched.
    assert post_cpu(client, owner).status_code == 200


def test_revoking_one_key_leaves_the_others_sessions_open(client: TestClient) -> None:
    owner = register(client)
    first, second = make_key(client, owner, "ingest", "a"), make_key(client, owner, "ingest", "b")
    kept = key_session(client, second["key"])
    assert revoke(client, owner, first["id"]).status_code == 200
    assert post_cpu(client, kept).status_code == 200
    assert key_login(client, second["key"]).status_code == 200


def test_another_users_key_id_is_404_like_an_unknown_one_and_stays_live(client: TestClient) -> None:
    alice, bob = register(client, "alice"), register(client, "bob")
    theirs = make_key(client, bob, "ingest")
    assert answer(revoke(client, alice, theirs["id"])) == (404, NO_SUCH_KEY)
    assert answer(revoke(client, alice, "00000000000000ff")) == (404, NO_SUCH_KEY)
    assert key_login(client, theirs["key"]).status_code == 200
    assert [entry["id"] for entry in listed(client, bob)] == [theirs["id"]]


@pytest.mark.parametrize("key_id", ["0000000000000001x", "ZZZZZZZZZZZZZZZZ", "..", "%2e%2e", "key"])
def test_an_id_that_is_no_key_id_is_404(client: TestClient, key_id: str) -> None:
    token = register(client)
    make_key(client, token)
    assert answer(revoke(client, token, key_id)) == (404, NO_SUCH_KEY)


def test_revoking_a_key_twice_is_404_the_second_time(client: TestClient) -> None:
    token = register(client)
    made = make_key(client, token)
    assert revoke(client, token, made["id"]).status_code == 200
    assert answer(revoke(client, token, made["id"])) == (404, NO_SUCH_KEY)


def test_revoke_for_an_unknown_hash_is_401_before_the_id_is_looked_at(client: TestClient) -> None:
    assert answer(revoke(client, UNKNOWN, "0000000000000001")) == (401, POST_401)
    assert answer(revoke(client, UNKNOWN, "no-id")) == (401, POST_401)


def test_revoke_by_a_key_session_is_403_even_for_an_unknown_id(client: TestClient) -> None:
    owner = register(client)
    token = key_session(client, make_key(client, owner, "read")["key"])
    assert answer(revoke(client, token, "00000000000000ff")) == (403, FORBIDDEN)


def test_keys_item_answers_405_to_other_methods(client: TestClient) -> None:
    token = register(client)
    made = make_key(client, token)
    result = client.simulate_get(f"/keys/{made['id']}", params={"hash": token})
    assert result.status_code == 405 and "reason" in result.json
    result = client.simulate_delete("/keys", params={"hash": token})
    assert result.status_code == 405 and "reason" in result.json


# --- POST /login with a key ---------------------------------------------------------------------------


def test_a_key_opens_a_new_session_each_time_on_the_host_named(client: TestClient) -> None:
    owner = register(client)
    key = make_key(client, owner, "ingest")["key"]
    first, second = key_session(client, key), key_session(client, key, host="web-1")
    assert first != second
    assert post_cpu(client, second).status_code == 200
    listing = reads(client, owner)["/sessions"].json["payload"]
    assert [(entry["session"], entry["host"]) for entry in listing][:2] == [(second, "web-1"), (first, None)]


@pytest.mark.parametrize(
    "key", ["", "pmk_", NO_KEY, "pmk_" + "A" * 42, "Bearer x", "pmk_" + "A" * 44, "ü" * 47]
)
def test_a_text_that_is_no_live_key_is_401_wrong_credentials(client: TestClient, key: str) -> None:
    make_key(client, register(client))
    assert answer(key_login(client, key)) == (401, WRONG_CREDENTIALS)
    assert answer(key_login(client, key, host="web-1")) == (401, WRONG_CREDENTIALS)


@pytest.mark.parametrize("key", [None, 7, True, [], {"key": "pmk_"}, 1.5])
def test_a_key_that_is_no_string_is_400_naming_key(client: TestClient, key: Any) -> None:
    assert is_bad_arguments(key_login(client, key), "key")


@pytest.mark.parametrize("extra", [{"user": "alice"}, {"passwd": "pw"}, {"user": "alice", "passwd": "pw"}])
def test_a_key_beside_user_or_passwd_is_400_naming_both(client: TestClient, extra: dict[str, str]) -> None:
    key = make_key(client, register(client))["key"]
    result = key_login(client, key, **extra)
    assert is_bad_arguments(result, "key"), result.text
    assert all(field in result.json["detail"] for field in extra)


@pytest.mark.parametrize("host", [7, True, ["web"], "", "x" * 129, "web\n1"])
def test_a_key_login_with_a_bad_host_is_400_naming_host(client: TestClient, host: Any) -> None:
    key = make_key(client, register(client))["key"]
    assert is_bad_arguments(key_login(client, key, host=host), "host")


def test_a_password_login_is_unchanged_beside_keys(client: TestClient) -> None:
    register(client)
    result = client.simulate_post("/login", json={"user": "alice", "passwd": "pw"})
    assert result.status_code == 200 and set(result.json) == {"hash"}
    assert answer(client.simulate_post("/login", json={"user": "alice", "passwd": "no"})) == (
        401,
        WRONG_CREDENTIALS,
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(max_size=80))
def test_any_text_but_a_live_key_is_401(client: TestClient, clock: FixedClock, key: str) -> None:
    # A new failure window each time: failed key logins count against the address (a 429 past 100).
    clock.now += 3600
    assert answer(key_login(client, key)) == (401, WRONG_CREDENTIALS)


def test_failed_key_logins_are_limited_per_address_like_password_logins(client: TestClient) -> None:
    key = make_key(client, register(client))["key"]
    for _ in range(100):
        assert key_login(client, NO_KEY).status_code == 401
    refused = key_login(client, key)
    assert answer(refused) == (429, {"reason": "Too many attempts, retry later"})
    assert int(refused.headers["retry-after"]) >= 1


# --- scopes -------------------------------------------------------------------------------------------


def test_an_ingest_session_posts_and_logs_out_but_reads_nothing(client: TestClient) -> None:
    owner = register(client)
    token = key_session(client, make_key(client, owner, "ingest")["key"], host="web-1")
    assert post_cpu(client, token).status_code == 200
    assert answer(post_batch(client, token)) == (200, {"stored": 1})
    assert answer(post_metrics(client, token)) == (200, {"stored": 1})
    for path, result in reads(client, token).items():
        assert answer(result) == (403, FORBIDDEN), path
    assert answer(client.simulate_get("/keys", params={"hash": token})) == (403, FORBIDDEN)
    # Not even another session's or a host's samples, nor a CSV or bucketed read.
    for params in [{"session": owner}, {"format": "csv"}, {"step": "60"}]:
        assert answer(client.simulate_get("/cpu", params={"hash": token, **params})) == (403, FORBIDDEN)
    host_read = client.simulate_get("/samples", params={"hash": token, "metric": "cpu", "host": "web-1"})
    assert answer(host_read) == (403, FORBIDDEN)
    assert answer(logout(client, token)) == (200, {})
    # What it posted is the user's: the password session reads it.
    assert reads(client, owner)["/hosts"].json["payload"][0]["host"] == "web-1"


def test_a_read_session_reads_everything_but_posts_nothing(client: TestClient) -> None:
    owner = client.simulate_post("/register", json={"user": "alice", "passwd": "pw", "host": "web-1"}).json[
        "hash"
    ]
    assert post_cpu(client, owner, 9.0).status_code == 200
    token = key_session(client, make_key(client, owner, "read")["key"])
    for path, result in reads(client, token).items():
        assert result.status_code == 200, path
    mine = client.simulate_get("/cpu", params={"hash": token, "session": owner})
    assert mine.json == {"payload": [{"cpu": 5.0, "timestamp": 9.0}]}
    host = client.simulate_get("/samples", params={"hash": token, "host": "web-1", "metric": "cpu"})
    assert host.json == {"payload": {"cpu": [{"timestamp": 9.0, "value": 5.0}]}}
    assert answer(post_cpu(client, token)) == (403, FORBIDDEN)
    assert answer(post_batch(client, token)) == (403, FORBIDDEN)
    assert answer(post_metrics(client, token)) == (403, FORBIDDEN)
    assert answer(logout(client, token)) == (200, {})


def test_a_bad_sample_from_a_read_session_is_400_before_403(client: TestClient) -> None:
    token = key_session(client, make_key(client, register(client), "read")["key"])
    result = client.simulate_post("/cpu", json={"hash": token, "cpu": -1, "time": 1.0})
    assert result.status_code == 400 and result.json["reason"] == "Bad arguments"


def test_a_password_session_does_everything(client: TestClient) -> None:
    token = register(client)
    assert post_cpu(client, token).status_code == 200
    assert post_metrics(client, token).status_code == 200
    assert all(result.status_code == 200 for result in reads(client, token).values())
    made = make_key(client, token)
    assert listed(client, token)[0]["id"] == made["id"]
    assert revoke(client, token, made["id"]).status_code == 200
    assert logout(client, token).status_code == 200
