"""The browser's session cookie, set and cleared by server responses (``/auth/browser``).

After signing in on the Streamlit page, the page hands its browser a one-time ticket; the
browser posts it to ``/auth/browser/session``, whose answer sets ``jarvis_session`` —
HttpOnly (no script can read it), ``SameSite=Lax``, ``Secure`` over https — holding the
server-side session token every page load resumes. ``/auth/browser/logout`` ends the session
the cookie names and deletes it; ``/auth/browser/forget`` deletes a cookie that no longer opens
a session (a script cannot delete an HttpOnly cookie itself).

These routes act on a cookie the browser sends by itself, so they answer only same-origin
JSON requests: ``Content-Type: application/json`` (which a cross-site form cannot send without
a CORS preflight that is never granted) and an ``Origin`` — when sent — equal to this server's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field

from jarvis.api.deps import ClientIp, ServicesDep
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.errors import PermissionDeniedError
from jarvis.security.client_ip import request_scheme

#: The cookie holding the browser's session token (the pages read it at every page load).
SESSION_COOKIE = "jarvis_session"


def _scheme(request: Request, services: ServicesDep) -> str:
    peer = request.client.host if request.client else None
    return request_scheme(
        peer, request.url.scheme, dict(request.headers), services.settings.trusted_proxies
    )


Scheme = Annotated[str, Depends(_scheme)]


def same_origin_json(request: Request, scheme: Scheme) -> None:
    """Refuse what another site could make a signed-in browser send."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    origin = request.headers.get("origin")
    own = f"{scheme}://{request.headers.get('host', '')}".lower()
    fetch_site = request.headers.get("sec-fetch-site", "same-origin").lower()
    if (
        media_type != "application/json"
        or (origin is not None and origin.lower() != own)
        or fetch_site not in ("same-origin", "none")
    ):
        raise PermissionDeniedError("Only this site's own pages may do that.")


router = APIRouter(
    prefix="/auth/browser",
    tags=["browser session"],
    responses=PROBLEM_RESPONSES,
    dependencies=[Depends(same_origin_json)],
    include_in_schema=False,
)


class TicketIn(BaseModel):
    ticket: str = Field(max_length=128)


def _cookie_path(request: Request) -> str:
    """The app's root (the API is mounted below it): ``/`` unless served under a prefix."""
    root = str(request.scope.get("app_root_path", request.scope.get("root_path", "")))
    return root.rstrip("/") + "/"


def _clear(response: Response, request: Request, scheme: str) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=_cookie_path(request),
        secure=scheme == "https",
        httponly=True,
        samesite="lax",
    )


@router.post("/session", status_code=status.HTTP_204_NO_CONTENT)
def start(
    body: TicketIn, request: Request, services: ServicesDep, ip: ClientIp, scheme: Scheme
) -> Response:
    """Spend a sign-in ticket: the answer sets the HttpOnly session cookie."""
    cookie = services.sessions.redeem_browser_ticket(
        body.ticket, ip=ip, replaces=request.cookies.get(SESSION_COOKIE)
    )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    max_age = int((cookie.expires_at - services.clock.now()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        cookie.token,
        max_age=max(0, max_age),
        path=_cookie_path(request),
        secure=scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, services: ServicesDep, ip: ClientIp, scheme: Scheme) -> Response:
    """End the session this browser's cookie names (if any) and delete the cookie."""
    services.sessions.end_browser(request.cookies.get(SESSION_COOKIE), ip=ip)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear(response, request, scheme)
    return response


@router.post("/forget", status_code=status.HTTP_204_NO_CONTENT)
def forget(request: Request, services: ServicesDep, scheme: Scheme) -> Response:
    """Delete the cookie if it no longer opens a session; a live one (another tab signed in
    meanwhile) is kept."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None and not services.sessions.browser_token_live(token):
        _clear(response, request, scheme)
    return response
