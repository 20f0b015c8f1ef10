"""First contact with `perfmon serve`: start-up failures are one line that says what to do, --version,
and the access log an operator can switch on."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.postgres_server import unique_database_url
from tests.servers import run_perfmon, start_server_process

pytestmark = pytest.mark.slow

ERROR_LINE = " ERROR "


def _the_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure, told on exactly one line of stderr, without a traceback, and a non-zero exit."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if ERROR_LINE in line]
    assert len(errors) == 1, result.stderr
    # Nothing else that looks like a problem: a warning before the error would be a second account of it.
    assert " WARNING " not in result.stderr, result.stderr
    return errors[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_serve_on_a_taken_port_says_so_in_one_line(taken_port: int, tmp_path: Path) -> None:
    result = run_perfmon("serve", "--port", str(taken_port), "--data-dir", str(tmp_path / "data"))
    line = _the_one_error_line(result)
    assert f"127.0.0.1:{taken_port}" in line and "in use" in line and "--port" in line


@pytest.mark.parametrize("host", ["no-such-host.invalid", "192.0.2.1"])
def test_serve_on_an_address_that_is_not_this_machines_says_so_in_one_line(host: str, tmp_path: Path) -> None:
    result = run_perfmon("serve", "--host", host, "--port", "0", "--data-dir", str(tmp_path / "data"))
    line = _the_one_error_line(result)
    assert host in line and "--host" in line


def test_serve_with_a_data_dir_that_cannot_be_created_names_the_path(tmp_path: Path) -> None:
    # Tests may run as root, whom permissions do not stop: a path under a regular file stops anyone.
    regular_file = tmp_path / "a-file"
    regular_file.write_text("not a folder")
    data_dir = regular_file / "data"
    result = run_perfmon("serve", "--port", "0", "--data-dir", str(data_dir))
    line = _the_one_error_line(result)
    assert str(data_dir) in line and "--data-dir" in line


def test_serve_on_a_data_dir_whose_folder_is_a_file_says_why_in_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "sessions").write_text("not a folder")
    result = run_perfmon("serve", "--port", "0", "--data-dir", str(data_dir))
    line = _the_one_error_line(result)
    assert str(data_dir) in line and "File exists" in line


@pytest.mark.postgres
def test_serve_on_a_database_that_does_not_exist_says_to_run_init_db(postgres_server_url: str) -> None:
    url = unique_database_url(postgres_server_url).render_as_string(hide_password=False)
    result = run_perfmon("serve", "--port", "0", "--storage", "db", "--database-url", url)
    line = _the_one_error_line(result)
    assert "does not exist" in line and "perfmon init-db" in line


def test_version_prints_the_package_version() -> None:
    from perfmon import __version__

    result = run_perfmon("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"perfmon {__version__}"


def _access_lines(log: list[str]) -> list[str]:
    return [line.rstrip("\n") for line in log if " perfmon.access: " in line]


def test_the_access_log_has_method_path_status_and_duration_but_never_a_hash(tmp_path: Path) -> None:
    server = start_server_process("--data-dir", str(tmp_path / "data"), "--access-log")
    try:
        registered = requests.post(f"{server.url}/register", json={"user": "ann", "passwd": "pw"}, timeout=10)
        token = registered.json()["hash"]
        sample = {"hash": token, "cpu": 1.5, "time": 1_700_000_000}
        assert requests.post(f"{server.url}/cpu", json=sample, timeout=10).status_code == 200
        assert requests.get(f"{server.url}/cpu", params={"hash": token}, timeout=10).status_code == 200
        # A client that puts a hash in the path by mistake must not have it logged either.
        assert requests.get(f"{server.url}/cpu/{token}", timeout=10).status_code == 404
        assert requests.get(f"{server.url}/cpu/{uuid.uuid4().hex}", timeout=10).status_code == 404
    finally:
        assert server.stop() == 0
    lines = _access_lines(server.log)
    assert len(lines) == 5, server.log
    shapes = [line.split(" perfmon.access: ")[1].split(" ")[:3] for line in lines]
    assert shapes[:3] == [["POST", "/register", "200"], ["POST", "/cpu", "200"], ["GET", "/cpu", "200"]]
    assert all(shape[2] == "404" for shape in shapes[3:])
    assert all(line.endswith("ms") for line in lines)
    assert token not in "".join(server.log) and token.replace("-", "") not in "".join(server.log)
    assert "?" not in "".join(lines)


def test_there_is_no_access_log_unless_switched_on(tmp_path: Path) -> None:
    server = start_server_process("--data-dir", str(tmp_path / "data"))
    try:
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        server.stop()
    assert _access_lines(server.log) == []
