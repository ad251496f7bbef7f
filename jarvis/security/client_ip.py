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
    """The client's address as a string, or None when it cannot be read.

    ``remote_addr`` is the connection's peer; Streamlit reports None for loopback, taken here as
    127.0.0.1 — an address like any other, so per-IP limits apply to it (every client of a
    reverse proxy on the same host shares it until the proxy is listed as trusted).
    ``X-Forwarded-For`` is read only when that peer is a trusted proxy; then the right-most
    address that is not itself a trusted proxy is the client (left-most entries are whatever
    the client chose to send).
    """
    trusted = list(trusted_proxies)
    peer = _parse(remote_addr) if remote_addr else _parse(_LOOPBACK)
    if peer is None:
        return None
    if not trusted or not _is_trusted(peer, trusted):
        return str(peer)
    hops = [h for h in (p.strip() for p in _header(headers, "x-forwarded-for").split(",")) if h]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return str(peer)  # a malformed chain: fall back to the proxy itself
        if not _is_trusted(address, trusted):
            return str(address)
    return str(peer)


def request_scheme(
    remote_addr: str | None,
    scheme: str,
    headers: Mapping[str, str] | None,
    trusted_proxies: Iterable[str],
) -> str:
    """``https`` or ``http``: the connection's own scheme, or ``X-Forwarded-Proto`` when the
    peer is a trusted proxy (which terminated TLS in front of Jarvis)."""
    own = "https" if scheme in ("https", "wss") else "http"
    trusted = list(trusted_proxies)
    peer = _parse(remote_addr) if remote_addr else _parse(_LOOPBACK)
    if peer is None or not trusted or not _is_trusted(peer, trusted):
        return own
    forwarded = _header(headers, "x-forwarded-proto").split(",")[0].strip().lower()
    return forwarded if forwarded in ("http", "https") else own


#: Headers a reverse proxy adds to say whom it forwards for.
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def forwarded_by_untrusted_peer(
    remote_addr: str | None,
    headers: Mapping[str, str] | None,
    trusted_proxies: Iterable[str],
) -> bool:
    """True when the request carries forwarding headers but its peer is not a trusted proxy:
    Jarvis is probably behind a proxy nobody listed in ``JARVIS_TRUSTED_PROXIES``, so every
    client counts as the proxy's address."""
    if not any(_header(headers, name) for name in FORWARDING_HEADERS):
        return False
    peer = _parse(remote_addr) if remote_addr else _parse(_LOOPBACK)
    return peer is None or not _is_trusted(peer, list(trusted_proxies))


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value or ""
    return ""
