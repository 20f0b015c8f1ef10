"""Which address a login counts against: the peer, or what our own reverse proxies say."""

from __future__ import annotations

import pytest

from perfmon.config import parse_trusted_proxies
from perfmon.entrypoints.http.client_address import ClientAddress

PROXIES = ClientAddress(parse_trusted_proxies("10.0.0.1, 192.168.0.0/16, 2001:db8::/32"))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert ClientAddress().resolve("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_an_untrusted_peers_forwarded_for_is_ignored() -> None:
    assert PROXIES.resolve("203.0.113.9", "198.51.100.1") == "203.0.113.9"


def test_a_trusted_proxy_names_the_client_in_forwarded_for() -> None:
    assert PROXIES.resolve("10.0.0.1", "198.51.100.1") == "198.51.100.1"


def test_the_right_most_address_that_is_not_a_trusted_proxy_wins_over_forged_ones() -> None:
    forged_then_real = "1.1.1.1, 198.51.100.1, 192.168.4.4"
    assert PROXIES.resolve("10.0.0.1", forged_then_real) == "198.51.100.1"


def test_a_trusted_proxy_without_the_header_is_the_client() -> None:
    assert PROXIES.resolve("10.0.0.1", None) == "10.0.0.1"


def test_garbage_in_the_header_falls_back_to_the_peer() -> None:
    assert PROXIES.resolve("10.0.0.1", "198.51.100.1, not-an-address") == "10.0.0.1"


def test_ipv6_clients_and_proxies() -> None:
    assert PROXIES.resolve("2001:db8::5", "2001:db8::9, 2a00:1450::1") == "2a00:1450::1"


def test_when_every_hop_is_a_trusted_proxy_the_left_most_is_the_client() -> None:
    assert PROXIES.resolve("10.0.0.1", "192.168.1.1, 10.0.0.1") == "192.168.1.1"


@pytest.mark.parametrize("text", ["10.0.0.1/33", "proxy.example", "10.0.0.1;10.0.0.2"])
def test_a_bad_trusted_proxy_setting_names_the_bad_entry(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        parse_trusted_proxies(text)


def test_an_empty_setting_trusts_no_one() -> None:
    assert parse_trusted_proxies("") == () and parse_trusted_proxies(" , ") == ()


@pytest.mark.parametrize(
    ("entry", "client"),
    [
        ("198.51.100.1:5555", "198.51.100.1"),
        ("[2001:db9::1]:5555", "2001:db9::1"),
        ("[2001:db9::1]", "2001:db9::1"),
        ("2001:db9::1", "2001:db9::1"),
    ],
)
def test_an_address_written_with_a_port_or_brackets_is_the_client(entry: str, client: str) -> None:
    """Some proxies write ip:port: read as garbage, every client behind them would share one counter."""
    assert PROXIES.resolve("10.0.0.1", entry) == client
