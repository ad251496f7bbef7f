"""What every route may depend on: the services, the caller, the client's address.

The caller authenticates with ``Authorization: Bearer <token>``: a short-lived access JWT (from
``POST /auth/login`` or ``/auth/refresh``) or a personal API key (``jrv_...``). Either way the
route acts as that user, under the same row-level security, limits and budget as the pages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jarvis.bootstrap import Services
from jarvis.errors import PermissionDeniedError, RateLimitError, TokenError
from jarvis.identity import Principal
from jarvis.security.client_ip import client_ip as resolve_client_ip

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT or API key",
    description="An access token from /auth/login, or a personal API key (jrv_...).",
)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def client_ip(request: Request, services: ServicesDep) -> str | None:
    """The caller's address (``X-Forwarded-For`` only from ``JARVIS_TRUSTED_PROXIES``)."""
    peer = request.client.host if request.client else None
    return resolve_client_ip(peer, dict(request.headers), services.settings.trusted_proxies)


ClientIp = Annotated[str | None, Depends(client_ip)]


def current_principal(
    services: ServicesDep,
    ip: ClientIp,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The signed-in caller; 401 without valid credentials, 429 over the request rate."""
    if credentials is None or not credentials.credentials:
        raise TokenError("Send Authorization: Bearer <access token or API key>.")
    return principal_for(services, credentials.credentials, ip)


def principal_for(services: Services, token: str, ip: str | None) -> Principal:
    """The user a bearer ``token`` (access token or API key) acts as, counted against the
    per-key / per-user and per-address request limits (the API's, and ``/mcp``'s)."""
    if token.startswith(services.api_keys.prefix):
        principal = services.api_keys.authenticate(token)
    else:
        principal = services.sessions.authenticate(token)
    # Per user, whatever the credential: more keys or sessions do not buy more requests; and
    # per address. Both counted in one statement (the user's first: see ``hit_all``).
    limits = [(f"api:user:{principal.user_id}", services.settings.api_requests_per_minute)]
    if ip:
        limits.append((f"api:ip:{ip}", services.settings.api_requests_per_minute_per_ip))
    for decision, (_, per_minute) in zip(
        services.rate_limiter.hit_all(limits, 60), limits, strict=True
    ):
        if not decision.allowed:
            raise RateLimitError(
                f"Too many requests (limit {per_minute} per minute).",
                retry_after=decision.retry_after,
            )
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def current_admin(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise PermissionDeniedError("Only administrators may do that.")
    return principal


CurrentAdmin = Annotated[Principal, Depends(current_admin)]
