"""Which peers may connect to the FastAGI port: the ``allowed_peers`` setting, a list of networks (CIDR).

Anyone who can reach the port can run scripts, read what they say and, on a
campaign call, speak for the dialer; so by default only this machine may
(loopback). An address not in the list is logged and dropped before it can
send a byte.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from autocall.errors import ConfigError

LOOPBACK = ("127.0.0.0/8", "::1/128")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str], source: str = "allowed_peers") -> tuple[str, ...]:
    """The entries normalised (``10.1.2.3`` -> ``10.1.2.3/32``); ConfigError naming a bad one."""
    networks = []
    for entry in entries:
        text = str(entry).strip()
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ConfigError(f"{source}: {text!r} is not an address or a network; write it as CIDR, "
                              f"e.g. \"10.0.0.5\" or \"10.0.0.0/24\"") from None
    return tuple(networks)


class PeerFilter:
    """``allows(host)`` for a peer's address text (IPv4, IPv6, or IPv4 mapped into IPv6)."""

    __slots__ = ("_networks", "_seen")

    def __init__(self, networks: Iterable[str] = LOOPBACK) -> None:
        self._networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._seen: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        known = self._seen.get(host)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False          # not an IP address (a UNIX socket, say): not a listed peer
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None:
            address = mapped
        allowed = any(address in network for network in self._networks)
        if len(self._seen) >= 4096:
            self._seen.clear()
        self._seen[host] = allowed
        return allowed
