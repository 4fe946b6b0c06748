"""Where other machines reach a server (LAN play): the address to give a teammate for the address a
server listens on. Standard library only."""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["reachable_address"]

#: An address of the documentation network (RFC 5737): "connecting" a UDP socket to it sends nothing
#: but makes the system choose the interface (and so the address) it would route through.
_PROBE = ("192.0.2.1", 9)


def reachable_address(host: str) -> str | None:
    """The address other machines reach a server listening on ``host`` at: None for a loopback address
    (this machine only, the default); this machine's LAN address for a wildcard (``0.0.0.0``, ``::``);
    else ``host`` itself (a LAN address or a name)."""
    if host in ("", "localhost"):
        return None if host == "localhost" else _primary_address()
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host  # a host name: the teammate resolves it
    if ip.is_loopback:
        return None
    if ip.is_unspecified:
        return _primary_address()
    return host


def _primary_address() -> str:
    """This machine's address on the network it routes through (its LAN address), or its host name's
    address when it has no route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(_PROBE)
            return str(sock.getsockname()[0])
        except OSError:
            pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return socket.gethostname()
