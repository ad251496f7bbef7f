"""Where the server may connect on a user's behalf (the SSRF guard).

A user's OpenAI-compatible base URL makes this process open connections. Without a guard a
user could aim it at the cloud metadata service (169.254.169.254), the database port on
localhost or any host of the internal network. :class:`OutboundPolicy` refuses every address
that is not a routable public one — loopback, private (RFC 1918, fc00::/7), link-local
(169.254/16, fe80::/10), unspecified, multicast, reserved, shared (100.64/10) and the metadata
addresses — unless an administrator listed the host or its network in
``JARVIS_OUTBOUND_ALLOWLIST`` (``localhost,127.0.0.1,10.0.0.0/8`` for a local Ollama or vLLM).

It is applied twice: when a base URL is saved (:meth:`OutboundPolicy.check_url`, a clear
:class:`~jarvis.errors.OutboundRefusedError`) and at each connection
(:meth:`OutboundPolicy.connect_addresses`, used by the LLM adapters' HTTP transport), because
what a name resolves to may change after it was saved (DNS rebinding).

Pure: the standard library only (``socket`` for name resolution, injectable for tests).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from jarvis.errors import OutboundRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The setting that opens the guard (named in every refusal).
ALLOWLIST_VARIABLE = "JARVIS_OUTBOUND_ALLOWLIST"
SCHEMES = ("http", "https")

#: Cloud instance metadata services (most are also link-local or private; listed so they
#: stay refused whatever the ``ipaddress`` module thinks of their ranges).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)

#: ``resolve(host, port) -> addresses`` (every A / AAAA record).
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo``, TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_allowlist(entries: Iterable[str]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """``("localhost", "10.0.0.0/8", "::1")`` -> (host names, networks). Raises ``ValueError``
    on an entry that is neither a host name nor an address / network."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().strip("[]").lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        labels = entry.rstrip(".").split(".")
        if not all(
            label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
            for label in labels
        ):
            raise ValueError(
                f"expected host names, IP addresses or networks separated by commas, got {raw!r}"
            )
        hosts.add(".".join(labels))
    return frozenset(hosts), tuple(networks)


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or ``None`` if it is one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "is a cloud metadata service"
    if address.is_unspecified:
        return "is unspecified (0.0.0.0 or ::)"
    if address.is_loopback:
        return "is this server itself (loopback)"
    if address.is_link_local:
        return "is link-local (169.254.x.x / fe80::, where cloud metadata services live)"
    if address.is_multicast:
        return "is a multicast address"
    if address.is_reserved:
        return "is reserved (not a public internet address)"
    if address.is_private:
        return "is on a private network"
    if not address.is_global:
        return "is not a public internet address"
    return None


@dataclass(frozen=True)
class OutboundPolicy:
    """Refuses connections to non-public addresses unless allow-listed.

    ``allowlist``: host names (exact, case-insensitive), IP addresses and networks. A listed
    host name is trusted whatever it resolves to; otherwise every address the name resolves
    to must be public or inside a listed network.
    """

    allowlist: Sequence[str] = ()
    resolver: Resolver = field(default=system_resolver, repr=False, compare=False)
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hosts, networks = parse_allowlist(self.allowlist)
        object.__setattr__(self, "_hosts", hosts)
        object.__setattr__(self, "_networks", networks)

    # -- the checks ----------------------------------------------------------------------------

    def check_url(self, url: str, *, field: str = "base_url") -> None:
        """Refuse ``url`` unless its scheme is http(s) and its host is allowed.

        A name that does not resolve (yet) passes here — nothing can connect to it; the check
        at connection time (:meth:`connect_addresses`) still applies when it does.
        """
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise OutboundRefusedError(
                "Only http:// and https:// addresses are allowed.", field=field
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise OutboundRefusedError("The address has an invalid port.", field=field) from None
        host = parts.hostname
        if self.host_allowed(host):
            return
        try:
            addresses = self._addresses(host, port)
        except OSError:
            return
        for address in addresses:
            self._check_address(address, field=field)

    def connect_addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``: every address it resolves to is checked
        and they are returned, so the connection goes where the check looked.

        Raises :class:`OutboundRefusedError` (and ``OSError`` when the name does not resolve).
        """
        host = host.strip("[]")
        addresses = self._addresses(host, port)
        if not addresses:
            raise OSError(f"no address for {host!r}")
        if not self.host_allowed(host):
            for address in addresses:
                self._check_address(address, field="base_url")
        return [str(a) for a in addresses]

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` itself (a name or an address literal) is allow-listed."""
        host = host.strip("[]").rstrip(".").lower()
        if host in self._hosts:
            return True
        literal = _literal(host)
        return literal is not None and self._in_networks(literal)

    # -- helpers -------------------------------------------------------------------------------

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        return [ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolver(host, port)]

    def _in_networks(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(a.version == n.version and a in n for a in candidates for n in self._networks)

    def _check_address(self, address: IPAddress, *, field: str) -> None:
        if self._in_networks(address):
            return
        reason = refusal_reason(address)
        if reason is not None:
            raise OutboundRefusedError(
                f"That address {reason}; an admin can allow it with {ALLOWLIST_VARIABLE}.",
                field=field,
            )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
