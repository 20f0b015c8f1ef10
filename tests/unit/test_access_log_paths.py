"""What the access log shows of a request path: secrets masked, public ids kept (PROTOCOL.md part 4)."""

from __future__ import annotations

import pytest

from perfmon.entrypoints.access_log import loggable_path

TOKEN = "0b7e7a2e-5a55-4d1c-9d0e-6f0c3c1f2a11"
KEY = "pmk_" + "Ab3_-" * 8 + "xyz"


@pytest.mark.parametrize(
    "path",
    [
        f"/cpu/{TOKEN}",
        f"/keys/{KEY}",
        f"/keys/{KEY[:20]}",
        f"/x/{TOKEN.replace('-', '')}",
        "/keys/" + "ab" * 32,  # a key's digest
        f"/keys/{TOKEN.upper()}",
    ],
)
def test_a_secret_in_a_path_is_masked(path: str) -> None:
    shown = loggable_path(path)
    assert "<masked>" in shown
    for secret in (TOKEN, KEY, KEY[:20], TOKEN.replace("-", ""), "ab" * 32, TOKEN.upper()):
        assert secret not in shown


def test_a_key_id_in_a_revocation_is_kept_for_the_operator() -> None:
    assert loggable_path("/keys/0123456789abcdef") == "/keys/0123456789abcdef"
