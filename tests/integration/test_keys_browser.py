"""The dashboard's access pages in a real browser (PROTOCOL.md part 4): the keys page makes, shows once,
lists and revokes keys; a read key opens a read-only wall display; one session per tab, closed by Sign
out; CSV files saved without a URL that holds a session. Headless Chromium against a real server."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.browser import cpu_curve, new_dashboard_page, register_with_samples, save_csv, sign_in_to_fleet
from tests.host_data import catalogue_samples, log_in_on_host, post_samples

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("storage_kind", ["file"])]

USER, PASSWD = "keys-user", "correct horse battery staple"
KEY = re.compile(r"pmk_[A-Za-z0-9_-]{43}")


def _user_with_a_host(server_url: str) -> str:
    """The user, a session of the original client, and host web-1 with the last 10 minutes of samples;
    the first session's hash (to look at the user's sessions over HTTP)."""
    token = register_with_samples(server_url, USER, PASSWD, cpu_curve(time.time(), 60))
    on_host = log_in_on_host(server_url, USER, PASSWD, "web-1")
    post_samples(server_url, on_host, catalogue_samples(time.time(), 600, seed=1))
    return token


def _sessions(server_url: str, token: str) -> list[str]:
    answer = requests.get(f"{server_url}/sessions", params={"hash": token}, timeout=10)
    answer.raise_for_status()
    return [session["session"] for session in answer.json()["payload"]]


def _status(server_url: str, token: str) -> int:
    """What GET /sessions answers that session: 200 while it is open, 401 once closed."""
    return requests.get(f"{server_url}/sessions", params={"hash": token}, timeout=10).status_code


def _watch(page: Page) -> dict[str, list[str]]:
    """Every URL the page opens (navigations, downloads) and every error it logs, as they happen."""
    seen: dict[str, list[str]] = {"opened": [], "problems": []}
    page.on("framenavigated", lambda frame: seen["opened"].append(frame.url))
    page.on(
        "request",
        lambda request: seen["opened"].append(request.url) if request.is_navigation_request() else None,
    )
    page.on("download", lambda download: seen["opened"].append(download.url))
    page.on(
        "console", lambda message: seen["problems"].append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: seen["problems"].append(str(error)))
    return seen


def _open_with(page: Page, server_url: str, text: str) -> None:
    """Sign in through the second form, with a key or a session hash."""
    page.goto(f"{server_url}/")
    page.get_by_label("Key (pmk_…) or session hash").fill(text)
    page.get_by_role("button", name="Open").click()


def _make_key(page: Page, name: str, scope: str) -> dict[str, Any]:
    """Make a key on the keys page; what the page then shows of it."""
    page.get_by_label("Name").fill(name)
    page.get_by_label("Ingest: sends samples" if scope == "ingest" else "Read: views and reads").check()
    page.get_by_role("button", name="Make key").click()
    page.locator("#new-key:not([hidden])").wait_for()
    # The status names this key once it is shown: the panel may still show the key made before.
    page.wait_for_function(
        "(name) => document.getElementById('keys-status').textContent.includes(`“${name}” made`)"
        " && document.getElementById('new-key-text').value !== ''",
        arg=name,
    )
    shown: dict[str, Any] = page.evaluate(
        """() => ({
            title: document.getElementById("new-key-title").textContent,
            key: document.getElementById("new-key-text").value,
            focused: document.activeElement.id,
            command: document.getElementById("agent-command").value,
            commandShown: !document.getElementById("agent-command-box").hidden,
            said: document.getElementById("keys-status").textContent,
        })"""
    )
    return shown


_ROWS = """() => [...document.querySelectorAll("#key-list .key-row")].map((row) => ({
    id: row.dataset.id,
    name: row.querySelector(".key-name").textContent,
    scope: row.querySelector(".badge").textContent,
    figures: Object.fromEntries([...row.querySelectorAll(".figures div")].map(
        (div) => [div.querySelector("dt").textContent, div.querySelector("dd").textContent])),
}))"""


def _rows(page: Page, count: int) -> list[dict[str, Any]]:
    page.locator(f'#key-list[data-state="ready"][data-keys="{count}"]').wait_for(state="attached")
    rows: list[dict[str, Any]] = page.evaluate(_ROWS)
    return rows


def test_the_keys_page_makes_keys_shows_each_once_lists_them_and_revokes_one(
    server_url: str, browser: Browser
) -> None:
    token = _user_with_a_host(server_url)
    page = new_dashboard_page(browser)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    seen = _watch(page)
    sign_in_to_fleet(page, server_url, USER, PASSWD)
    page.get_by_role("link", name="Keys").click()
    page.locator("#keys-title").wait_for()
    assert page.evaluate("document.activeElement.id") == "keys-title"
    page.locator('#key-list[data-state="ready"]').wait_for(state="attached")
    assert page.get_by_text("No keys yet.").is_visible()

    # An ingest key: shown once, focused, announced, with the agent's command line for this server.
    ingest = _make_key(page, "web-1", "ingest")
    assert KEY.fullmatch(ingest["key"]), ingest["key"]
    assert ingest["focused"] == "new-key-text"
    assert ingest["said"] == "Ingest key “web-1” made: copy it now, it is shown only this once."
    assert ingest["commandShown"]
    assert (
        ingest["command"]
        == f"PERFMON_AGENT_KEY='{ingest['key']}' perfmon agent --server {server_url} --host web-1"
    )
    page.get_by_role("button", name="Copy").first.click()
    page.locator("#keys-status").filter(has_text="Key copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == ingest["key"]
    # Where the browser refuses the clipboard (a plain http:// address but localhost), the field is selected.
    page.evaluate(
        "() => { navigator.clipboard.writeText = () => Promise.reject(new DOMException('denied')); }"
    )
    page.get_by_role("button", name="Copy").nth(1).click()
    page.locator("#keys-status").filter(has_text="Command line selected").wait_for()
    selection = page.evaluate(
        "(() => { const f = document.activeElement; return [f.id, f.selectionStart, f.selectionEnd]; })()"
    )
    assert selection == ["agent-command", 0, len(ingest["command"])]

    # The key works: an agent's login with it posts to its host.
    agent = requests.post(f"{server_url}/login", json={"key": ingest["key"], "host": "web-1"}, timeout=10)
    agent.raise_for_status()
    agent_session = agent.json()["hash"]

    # A read key: shown once, no command line.
    read = _make_key(page, "wall display", "read")
    assert KEY.fullmatch(read["key"]) and read["key"] != ingest["key"]
    assert not read["commandShown"] and read["command"] == ""
    rows = _rows(page, 2)
    assert [(row["name"], row["scope"]) for row in rows] == [("web-1", "ingest"), ("wall display", "read")]
    assert rows[1]["figures"]["Last used"] == "never"
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d", rows[0]["figures"]["Created"]), rows[0]
    listed = requests.get(f"{server_url}/keys", params={"hash": token}, timeout=10).json()["payload"]
    assert [row["id"] for row in rows] == [key["id"] for key in listed]

    # A reload keeps this tab's session (no new one) and shows no key again.
    sessions_before = _sessions(server_url, token)
    kept = page.evaluate("sessionStorage.getItem('perfmon.hash')")
    page.reload()
    rows = _rows(page, 2)
    assert rows[0]["figures"]["Last used"] != "never"  # the agent's login used it
    assert page.locator("#new-key").is_hidden()
    assert page.evaluate("document.getElementById('new-key-text').value") == ""
    html = page.content()
    assert ingest["key"] not in html and read["key"] not in html
    assert page.evaluate("sessionStorage.getItem('perfmon.hash')") == kept
    assert _sessions(server_url, token) == sessions_before

    # Revoking asks first: kept when the question is dismissed, revoked when it is accepted.
    questions: list[str] = []

    def answer(accept: bool) -> Any:
        def on_dialog(dialog: Dialog) -> None:
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return on_dialog

    page.once("dialog", answer(False))
    page.get_by_role("button", name="Revoke web-1").click()
    assert questions and questions[-1].startswith("Revoke the key “web-1”?")
    assert len(_rows(page, 2)) == 2
    assert requests.post(
        f"{server_url}/samples",
        json={"hash": agent_session, "time": time.time(), "metrics": {"cpu": 1.0}},
        timeout=10,
    ).ok

    page.once("dialog", answer(True))
    page.get_by_role("button", name="Revoke web-1").click()
    page.locator("#keys-status").filter(has_text="Key “web-1” revoked.").wait_for()
    assert [row["name"] for row in _rows(page, 1)] == ["wall display"]
    assert page.evaluate("document.activeElement.id") == "key-list-title"
    # Its sessions are refused, and it opens no more.
    sample = {"hash": agent_session, "time": time.time(), "metrics": {"cpu": 1.0}}
    assert requests.post(f"{server_url}/samples", json=sample, timeout=10).status_code == 401
    assert requests.post(f"{server_url}/login", json={"key": ingest["key"]}, timeout=10).status_code == 401
    assert [
        key["name"]
        for key in requests.get(f"{server_url}/keys", params={"hash": token}, timeout=10).json()["payload"]
    ] == ["wall display"]

    assert not any(kept in url or ingest["key"] in url for url in seen["opened"]), seen["opened"]
    assert seen["problems"] == []


def test_a_read_key_opens_a_read_only_wall_display_that_a_revocation_closes(
    server_url: str, browser: Browser
) -> None:
    token = _user_with_a_host(server_url)
    made = requests.post(
        f"{server_url}/keys", json={"hash": token, "scope": "read", "name": "wall"}, timeout=10
    )
    made.raise_for_status()
    read_key = made.json()

    wall = new_dashboard_page(browser)  # a context of its own: another browser
    seen = _watch(wall)
    _open_with(wall, server_url, read_key["key"])
    wall.locator('#hosts[data-state="ready"]').wait_for(state="attached")
    assert wall.get_by_text("read-only", exact=True).is_visible()
    assert wall.locator("#who").text_content() == "signed in with a read key"
    assert wall.get_by_role("link", name="Keys").count() == 0  # not offered
    assert wall.locator('.host-card[data-host="web-1"] .spark').get_attribute("data-points") not in (
        None,
        "0",
    )

    # A host's charts, drawn.
    wall.get_by_role("link", name="web-1").click()
    wall.locator('#host-charts[data-state="ready"][data-host="web-1"]').wait_for(state="attached")
    assert int(wall.locator("#host-charts").get_attribute("data-buckets") or 0) > 0
    # The sessions, named by public ids to a key's session, each one's CPU charted.
    wall.get_by_role("link", name="Sessions").click()  # it shows the newest session with samples
    wall.wait_for_function("() => Number(document.getElementById('chart').dataset.points) > 0")
    options = wall.locator("#session option").evaluate_all("(options) => options.map((o) => o.value)")
    assert options and all(option.startswith("s-") for option in options), options
    # The keys page is not there for it, even by its address.
    wall.evaluate("location.hash = '#keys'")
    wall.wait_for_function("() => location.hash === '#fleet'")
    assert wall.locator("#keys").is_hidden() and wall.locator("#fleet").is_visible()

    # A reload keeps the same session: no new one.
    sessions_before = _sessions(server_url, token)
    wall_session = wall.evaluate("sessionStorage.getItem('perfmon.hash')")
    assert wall_session in sessions_before
    wall.reload()
    wall.locator('#hosts[data-state="ready"]').wait_for(state="attached")
    assert wall.get_by_text("read-only", exact=True).is_visible()
    assert wall.evaluate("sessionStorage.getItem('perfmon.hash')") == wall_session
    assert _sessions(server_url, token) == sessions_before

    # Revoked: the display's next refresh is refused, and it is back at sign-in.
    revoked = requests.delete(f"{server_url}/keys/{read_key['id']}", params={"hash": token}, timeout=10)
    revoked.raise_for_status()
    wall.get_by_role("alert").filter(has_text="the session has ended").wait_for(timeout=12_000)
    assert wall.locator("#sign-in").is_visible() and wall.locator("#fleet").is_hidden()
    assert wall.evaluate("sessionStorage.length") == 0
    assert _status(server_url, wall_session) == 401
    assert not any(wall_session in url or read_key["key"] in url for url in seen["opened"]), seen["opened"]
    # The one error logged is the refusal that sent it back to sign-in.
    assert all("401" in problem for problem in seen["problems"]), seen["problems"]


def test_an_ingest_key_at_sign_in_is_told_it_only_sends_and_its_session_is_closed(
    server_url: str, browser: Browser
) -> None:
    token = _user_with_a_host(server_url)
    made = requests.post(
        f"{server_url}/keys", json={"hash": token, "scope": "ingest", "name": "web-1"}, timeout=10
    )
    made.raise_for_status()
    page = new_dashboard_page(browser)
    with (
        page.expect_response(lambda answer: answer.url.endswith("/login")) as login,
        page.expect_response(lambda answer: answer.url.endswith("/logout")) as logout,
    ):
        _open_with(page, server_url, made.json()["key"])
    page.get_by_role("alert").filter(has_text="that is an ingest key: it can only send samples").wait_for()
    assert page.locator("#sign-in").is_visible() and page.locator("#fleet").is_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    # The session the sign-in opened reads nothing (403), so the page closed it again: now 401.
    opened = login.value.json()["hash"]
    assert logout.value.status == 200
    assert _status(server_url, opened) == 401

    # A key cut short is told so before anything is sent.
    _open_with(page, server_url, made.json()["key"][:20])
    page.get_by_role("alert").filter(has_text="that is not a whole key").wait_for()


def test_one_session_per_tab_and_sign_out_closes_it(server_url: str, browser: Browser) -> None:
    token = _user_with_a_host(server_url)
    page = new_dashboard_page(browser)
    seen = _watch(page)
    sign_in_to_fleet(page, server_url, USER, PASSWD)
    mine = page.evaluate("sessionStorage.getItem('perfmon.hash')")
    sessions = _sessions(server_url, token)
    assert mine in sessions

    for _ in range(2):
        page.reload()
        page.locator('#hosts[data-state="ready"]').wait_for(state="attached")
    assert page.evaluate("sessionStorage.getItem('perfmon.hash')") == mine
    assert _sessions(server_url, token) == sessions

    # Another tab is another session.
    other = page.context.new_page()
    sign_in_to_fleet(other, server_url, USER, PASSWD)
    theirs = other.evaluate("sessionStorage.getItem('perfmon.hash')")
    assert theirs != mine and len(_sessions(server_url, token)) == len(sessions) + 1

    page.get_by_role("button", name="Sign out").click()
    page.locator("#sign-in").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    assert page.evaluate("document.activeElement.id") == "user"
    assert _status(server_url, mine) == 401
    assert _status(server_url, theirs) == 200  # the other tab's session is its own
    page.reload()
    page.locator("#login-form").wait_for()
    assert page.locator("#fleet").is_hidden()
    assert not any(mine in url for url in seen["opened"]), seen["opened"]
    assert seen["problems"] == []


def test_a_pasted_session_hash_opens_with_what_its_session_may_do(server_url: str, browser: Browser) -> None:
    token = _user_with_a_host(server_url)
    made = requests.post(
        f"{server_url}/keys", json={"hash": token, "scope": "read", "name": "wall"}, timeout=10
    )
    read_session = requests.post(f"{server_url}/login", json={"key": made.json()["key"]}, timeout=10).json()[
        "hash"
    ]
    page = new_dashboard_page(browser)

    # The password's session (from POST /register): everything, the keys page too.
    _open_with(page, server_url, token)
    page.locator('#hosts[data-state="ready"]').wait_for(state="attached")
    assert page.locator("#who").text_content() == "signed in with a session hash"
    assert page.get_by_role("link", name="Keys").is_visible() and page.locator("#read-only").is_hidden()

    # A read key's session: found out by its refusal to list keys (403), read-only.
    page.evaluate("sessionStorage.clear()")
    _open_with(page, server_url, read_session)
    page.locator('#hosts[data-state="ready"]').wait_for(state="attached")
    assert page.locator("#who").text_content() == "signed in with a read key"
    assert page.get_by_role("link", name="Keys").count() == 0 and page.locator("#read-only").is_visible()


def test_csv_files_are_saved_without_opening_a_url_that_holds_a_session(
    server_url: str, browser: Browser
) -> None:
    token = _user_with_a_host(server_url)
    page = new_dashboard_page(browser)
    seen = _watch(page)
    sign_in_to_fleet(page, server_url, USER, PASSWD)
    mine = page.evaluate("sessionStorage.getItem('perfmon.hash')")

    page.get_by_role("link", name="web-1").click()
    page.locator('#host-charts[data-state="ready"][data-host="web-1"]').wait_for(state="attached")
    host_csv, name, read = save_csv(page, page.get_by_role("button", name="CSV of mem"))
    assert name == "perfmon-web-1-mem.csv"
    assert host_csv == requests.get(read, timeout=10).text
    lines = host_csv.splitlines()
    assert lines[0] == "mem,time" and len(lines) - 1 == 600

    page.get_by_role("link", name="Sessions").click()
    page.get_by_label("Session", exact=True).select_option(token)
    page.wait_for_selector(f'#chart[data-session="{token}"][data-points]', state="attached")
    session_csv, name, read = save_csv(page, page.get_by_role("button", name="Download CSV"))
    assert name == f"perfmon-{token[:8]}.csv"
    assert session_csv.splitlines()[0] == "cpu,time" and len(session_csv.splitlines()) - 1 == 60
    assert f"session={token}" in read and f"hash={mine}" in read  # the fetch carries them...

    # ... but nothing the browser opened (pages, downloads) held a session's hash.
    assert seen["opened"], "no navigation recorded"
    secrets = [*_sessions(server_url, token), mine]
    assert not [url for url in seen["opened"] if any(secret in url for secret in secrets)], seen["opened"]
    assert all(url.startswith(server_url) or url.startswith("blob:") for url in seen["opened"]), seen[
        "opened"
    ]
    assert seen["problems"] == []


@pytest.mark.parametrize("width", [320])
def test_on_a_phone_the_keys_page_and_a_new_key_fit_the_screen(
    server_url: str, browser: Browser, width: int
) -> None:
    _user_with_a_host(server_url)
    page = new_dashboard_page(browser, {"width": width, "height": 740})
    sign_in_to_fleet(page, server_url, USER, PASSWD)
    page.get_by_role("link", name="Keys").click()
    _make_key(page, "a-rather-long-host-name.example.org", "ingest")
    _rows(page, 1)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for selector in [
        "#key-form",
        "#new-key",
        "#new-key-text",
        "#agent-command",
        "#copy-key",
        ".key-row",
        ".revoke",
    ]:
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)
