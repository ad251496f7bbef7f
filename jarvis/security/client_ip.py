"""Which address a request comes from, trusting ``X-Forwarded-For`` only behind known proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOOPBACK = "127.0.0.1"


def _parse(value: str | None) -> IPAddress | None:
    if not value:
        return None
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:8080"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "1.2.3.4:5678"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _is_trusted(address: IPAddress, trusted: Iterable[str]) -> bool:
    for entry in trusted:
        try:
            if address in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def client_ip(
    remote_addr: str | None,
    headers: Mapping[str, str] | None,
    trusted_proxies: Iterable[str],
) -> str | None:
    """The client's address as a string, or None when unknown.

    ``remote_addr`` is the connection's peer (Streamlit reports None for loopback, taken here
    as 127.0.0.1). ``X-Forwarded-For`` is read only when that peer is a trusted proxy; then the
    right-most address that is not itself a trusted proxy is the client (left-most entries are
    whatever the client chose to send).
    """
    trusted = list(trusted_proxies)
    peer = _parse(remote_addr) if remote_addr else _parse(_LOOPBACK)
    if peer is None:
        return None
    if not trusted or not _is_trusted(peer, trusted):
        return None if remote_addr is None else str(peer)
    forwarded = ""
    for name, value in (headers or {}).items():
        if name.lower() == "x-forwarded-for":
            forwarded = value
            break
    hops = [h for h in (p.strip() for p in forwarded.split(",")) if h]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return str(peer)  # a malformed chain: fall back to the proxy itself
        if not _is_trusted(address, trusted):
            return str(address)
    return None if remote_addr is None else str(peer)
