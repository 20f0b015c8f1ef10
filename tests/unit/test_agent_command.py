"""`perfmon agent`'s command line: --host and --disk-path, their defaults, and usage errors at start."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import socket
from pathlib import Path

import pytest

from perfmon.agent import command
from perfmon.agent.agent import KEY_VARIABLE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perfmon")
    command.add_parser(parser.add_subparsers())
    return parser


def _arguments(*flags: str) -> argparse.Namespace:
    return _parser().parse_args(["agent", "--server", "http://127.0.0.1:9", "--user", "alice", *flags])


def test_the_host_defaults_to_the_machines_name_and_the_disk_path_to_the_root() -> None:
    arguments = _arguments()

    assert (arguments.host, arguments.disk_path) == (socket.gethostname(), "/")


def test_host_and_disk_path_are_taken_as_given() -> None:
    arguments = _arguments("--host", "web-1 (rack 4)", "--disk-path", "/var/lib")

    assert (arguments.host, arguments.disk_path) == ("web-1 (rack 4)", "/var/lib")


def test_the_help_names_the_new_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["agent", "--help"])

    shown = " ".join(capsys.readouterr().out.split())
    assert "--host" in shown and "--disk-path" in shown and "this machine's host name" in shown


@pytest.mark.parametrize("host", ["", "x" * 129, "web\n1", "web\x001"])
def test_a_host_name_the_server_would_refuse_is_a_usage_error_before_anything_starts(
    host: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    arguments = _arguments("--host", host, "--spool-dir", str(tmp_path / "spool"))

    with caplog.at_level(logging.ERROR):
        assert command.run(arguments, {command.PASSWORD_VARIABLE: "pw"}) == 2

    assert "--host must be 1..128 characters" in caplog.text
    assert not (tmp_path / "spool").exists()


def test_a_host_name_of_128_characters_of_any_script_is_accepted() -> None:
    assert command.is_host_name("é🖥" * 64)


def test_a_disk_path_that_does_not_exist_is_a_usage_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    arguments = _arguments("--disk-path", str(tmp_path / "missing"), "--spool-dir", str(tmp_path / "spool"))

    with caplog.at_level(logging.ERROR):
        assert command.run(arguments, {command.PASSWORD_VARIABLE: "pw"}) == 2

    assert "--disk-path" in caplog.text


def test_a_spool_folder_claimed_for_another_host_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "spool"
    command.claim_spool_dir(folder, "http://127.0.0.1:9", "alice", "web-1")

    with caplog.at_level(logging.ERROR):
        status = command.run(
            _arguments("--host", "web-2", "--spool-dir", str(folder)), {command.PASSWORD_VARIABLE: "pw"}
        )

    assert status == 1
    assert "another server, user or host" in caplog.text
    assert json.loads((folder / command.TARGET_FILE).read_text())["host"] == "web-1"


def _default_and_claim(state: Path, host: str, server: str = "http://127.0.0.1:9") -> Path:
    """What `perfmon agent` does at start without --spool-dir: pick the default folder, then claim it."""
    folder = command.default_spool_dir(server, "alice", host, {"XDG_STATE_HOME": str(state)})
    command.claim_spool_dir(folder, server, "alice", host)
    return folder


def test_two_agents_of_one_user_with_different_hosts_get_their_own_default_spool_folders(
    tmp_path: Path,
) -> None:
    web = _default_and_claim(tmp_path, "web-1")
    db = _default_and_claim(tmp_path, "db-1")

    assert web != db
    assert web.parent == db.parent == tmp_path / "perfmon-agent"
    assert _default_and_claim(tmp_path, "web-1") == web  # a restart finds its spool again
    assert _default_and_claim(tmp_path, "db-1", server="http://127.0.0.1:10") != db


def test_the_previous_releases_default_spool_folder_is_taken_over_by_one_host_and_kept(
    tmp_path: Path,
) -> None:
    # The release before hosts named its folder by server and user only, and claimed it without a host.
    old = tmp_path / "perfmon-agent" / hashlib.sha256(b"http://127.0.0.1:9\nalice").hexdigest()[:16]
    old.mkdir(parents=True)
    (old / command.TARGET_FILE).write_text(json.dumps({"server": "http://127.0.0.1:9", "user": "alice"}))

    first = _default_and_claim(tmp_path, "web-1")
    other = _default_and_claim(tmp_path, "db-1")

    assert first == old
    assert json.loads((old / command.TARGET_FILE).read_text())["host"] == "web-1"
    assert other != old
    assert _default_and_claim(tmp_path, "web-1") == old  # its later runs keep draining it


KEY = "pmk_" + "k" * 43  # shaped as PROTOCOL.md part 4's keys; never to be shown


def _with_key(*flags: str) -> argparse.Namespace:
    """A command line without --user, as an agent deployed with a key runs."""
    return _parser().parse_args(["agent", "--server", "http://127.0.0.1:9", *flags])


def test_a_key_comes_from_the_flag_else_from_the_variable_and_the_flag_wins() -> None:
    from_variable = command.given_key(_with_key(), {KEY_VARIABLE: f" {KEY}\n"})
    from_flag = command.given_key(_with_key("--key", KEY), {KEY_VARIABLE: "pmk_other"})

    assert from_variable is not None and (from_variable.text, from_variable.source) == (
        KEY,
        "$PERFMON_AGENT_KEY",
    )
    assert from_flag is not None and (from_flag.text, from_flag.source) == (KEY, "--key")
    assert command.given_key(_with_key(), {KEY_VARIABLE: ""}) is None
    assert KEY not in repr(from_flag)


def test_with_a_key_no_user_is_needed() -> None:
    assert command.usage_problem(_with_key(), {KEY_VARIABLE: KEY}) is None
    assert command.usage_problem(_with_key("--key", KEY), {}) is None


def test_the_help_says_a_key_flag_shows_in_ps_and_names_the_variable_and_the_exit_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["agent", "--help"])

    shown = " ".join(capsys.readouterr().out.split())
    assert "--key" in shown and "shows in `ps`" in shown and "$PERFMON_AGENT_KEY" in shown
    assert "77 the server refused the key" in shown
    assert "per server and host" in shown  # --spool-dir's default with a key


@pytest.mark.parametrize(
    ("flags", "environ", "expected"),
    [
        ((), {}, "no credentials: set PERFMON_AGENT_KEY to an ingest key, or give --user"),
        (
            ("--user", "alice"),
            {KEY_VARIABLE: KEY},
            "--user does not go with a key (from $PERFMON_AGENT_KEY)",
        ),
        (("--user", "alice", "--key", KEY), {}, "leave out --key to log in as --user"),
        (("--register",), {KEY_VARIABLE: KEY}, "--register does not go with a key"),
        (
            ("--key", "hunter2-password"),
            {},
            "the key from --key is not a whole perfmon key (pmk_ and 43 characters of A-Z, a-z, 0-9, - and "
            "_; no quotes)",
        ),
        (("--key", KEY[:-1]), {}, "the key from --key is not a whole perfmon key"),
        ((), {KEY_VARIABLE: f"'{KEY}'"}, "the key from $PERFMON_AGENT_KEY is not a whole perfmon key"),
    ],
)
def test_credentials_that_do_not_go_together_are_a_usage_error_before_anything_starts(
    flags: tuple[str, ...],
    environ: dict[str, str],
    expected: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    arguments = _with_key(*flags, "--spool-dir", str(tmp_path / "spool"))

    with caplog.at_level(logging.DEBUG):
        assert command.run(arguments, environ) == command.EXIT_USAGE

    assert expected in caplog.text
    assert KEY not in caplog.text and "hunter2" not in caplog.text
    assert not (tmp_path / "spool").exists()


def test_with_a_key_the_default_spool_folder_is_per_server_and_host_whichever_the_key(
    tmp_path: Path,
) -> None:
    state = {"XDG_STATE_HOME": str(tmp_path)}
    folder = command.default_spool_dir("http://127.0.0.1:9", None, "web-1", state)
    command.claim_spool_dir(folder, "http://127.0.0.1:9", None, "web-1")

    # A restart with another key (the first one revoked) finds the same folder, and may use it.
    assert command.default_spool_dir("http://127.0.0.1:9", None, "web-1", state) == folder
    command.claim_spool_dir(folder, "http://127.0.0.1:9", None, "web-1")
    assert command.default_spool_dir("http://127.0.0.1:9", None, "web-2", state) != folder
    assert command.default_spool_dir("http://127.0.0.1:10", None, "web-1", state) != folder
    # Never a folder of an agent with a password, whatever its user's name (one named as the host even).
    assert folder not in {
        _default_and_claim(tmp_path, "web-1"),
        command.default_spool_dir("http://127.0.0.1:9", "web-1", "web-1", state),
    }
    assert json.loads((folder / command.TARGET_FILE).read_text()) == {
        "server": "http://127.0.0.1:9",
        "host": "web-1",
    }


def test_a_key_agent_and_a_password_agent_do_not_share_a_spool_folder(tmp_path: Path) -> None:
    by_password, by_key = tmp_path / "password", tmp_path / "key"
    command.claim_spool_dir(by_password, "http://127.0.0.1:9", "alice", "web-1")
    command.claim_spool_dir(by_key, "http://127.0.0.1:9", None, "web-1")

    with pytest.raises(ValueError, match="logging in the other way"):
        command.claim_spool_dir(by_password, "http://127.0.0.1:9", None, "web-1")
    with pytest.raises(ValueError, match="logging in the other way"):
        command.claim_spool_dir(by_key, "http://127.0.0.1:9", "alice", "web-1")
