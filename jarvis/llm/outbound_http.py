"""An HTTP client for user-supplied base URLs that connects only where
:class:`~jarvis.security.outbound.OutboundPolicy` allows.

The check runs inside the connection pool, at every new connection: the name is resolved,
every address is checked, and the socket is opened to a checked address — so a name that
resolves to a public address when saved and to 169.254.169.254 later (DNS rebinding), or a
redirect to an internal host, is refused all the same. TLS still verifies the host name (the
pool passes it as SNI / for certificate checks, whatever address the socket went to).

Proxies from the environment (``HTTPS_PROXY``) are not used for these requests: through a
proxy the guard would see only the proxy's address.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
import httpcore2
import httpx2

from jarvis.security.outbound import OutboundPolicy


class GuardedBackend(httpcore2.NetworkBackend):
    """A ``httpcore2`` network backend that opens TCP connections only to allowed addresses
    (:class:`~jarvis.errors.OutboundRefusedError` otherwise)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        try:
            addresses = self._policy.connect_addresses(host, port)
        except OSError as exc:  # the name does not resolve: the pool's usual connect error
            raise httpcore2.ConnectError("could not resolve the host") from exc
        failure: httpcore2.ConnectError | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address,
                    port,
                    timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore2.ConnectError as exc:
                failure = exc
        assert failure is not None  # connect_addresses never returns an empty list
        raise failure

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class AsyncGuardedBackend(httpcore2.AsyncNetworkBackend):
    """:class:`GuardedBackend` for async clients (the MCP client's streamable HTTP): the name
    is resolved and checked on a worker thread, the socket opened to a checked address."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await anyio.to_thread.run_sync(self._policy.connect_addresses, host, port)
        except OSError as exc:
            raise httpcore2.ConnectError("could not resolve the host") from exc
        failure: httpcore2.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore2.ConnectError as exc:
                failure = exc
        assert failure is not None  # connect_addresses never returns an empty list
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_async_transport(policy: OutboundPolicy) -> httpx2.AsyncHTTPTransport:
    """:func:`guarded_transport` for async clients."""
    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore2.AsyncConnectionPool(
        network_backend=AsyncGuardedBackend(policy), **_pool_options()
    )
    return transport


def guarded_transport(policy: OutboundPolicy) -> httpx2.HTTPTransport:
    """An ``httpx2`` transport whose connections go through :class:`GuardedBackend`."""
    transport = httpx2.HTTPTransport(trust_env=False)
    # httpx2 builds its pool without a way to pass a network backend: replace the pool with
    # the same one, guarded (same TLS defaults: certifi / SSL_CERT_FILE).
    transport._pool = httpcore2.ConnectionPool(
        network_backend=GuardedBackend(policy), **_pool_options()
    )
    return transport


def _pool_options() -> dict[str, Any]:
    """httpx2's own pool settings (same TLS defaults: certifi / SSL_CERT_FILE)."""
    return {
        "ssl_context": httpx2.create_ssl_context(),
        "max_connections": 100,
        "max_keepalive_connections": 20,
        "keepalive_expiry": 5.0,
    }


def guarded_openai_client(policy: OutboundPolicy) -> httpx2.Client:
    """The HTTP client an OpenAI-compatible adapter uses for a user's base URL."""
    import openai  # imported by the adapter that asks for this client anyway (seconds)

    return openai.DefaultHttpxClient(transport=guarded_transport(policy), trust_env=False)
