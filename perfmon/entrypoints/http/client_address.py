"""The client's network address, for the login limits: the peer, or what trusted proxies say it was."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import falcon

from perfmon.config import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientAddress:
    """Tells a request's client address: the peer's, unless the peer is a trusted reverse proxy."""

    def __init__(self, trusted_proxies: Sequence[Network] = ()) -> None:
        self._trusted = tuple(trusted_proxies)

    def of(self, req: falcon.Request) -> str:
        """The client's address as text (falcon's remote_addr, or from X-Forwarded-For)."""
        return self.resolve(req.remote_addr, req.get_header("X-Forwarded-For"))

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        """The right-most X-Forwarded-For address that is not a trusted proxy, when the peer is one.

        Each proxy appends the address it received from, so only the entries added by our own proxies
        can be believed: walking from the right, the first address that is not ours is the client. Any
        entry further left was written by the client itself and may be forged. An untrusted peer's
        header is ignored altogether, as is a header holding something that is not an address.
        """
        if not forwarded_for or not self._is_trusted(peer):
            return peer
        for entry in reversed(forwarded_for.split(",")):
            address = _address(entry.strip())
            if address is None:
                return peer
            if not self._is_trusted(str(address)):
                return str(address)
        # Every hop is one of our proxies: the left-most is as near to the client as we can tell.
        return str(_address(forwarded_for.split(",")[0].strip()))

    def _is_trusted(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in self._trusted)


def _address(text: str) -> Address | None:
    """The address in an X-Forwarded-For entry: bare, or with a port as some proxies write it
    ("203.0.113.9:5555", "[2001:db8::1]:5555"); None for anything else."""
    for candidate in (text, _without_port(text)):
        try:
            return ipaddress.ip_address(candidate)
        except ValueError:
            continue
    return None


def _without_port(text: str) -> str:
    if text.startswith("["):  # [v6] or [v6]:port
        return text[1 : text.find("]")] if "]" in text else text
    host, colon, port = text.rpartition(":")
    # One colon only: an IPv6 address without brackets has several and no port.
    return host if colon and port.isdigit() and ":" not in host else text
