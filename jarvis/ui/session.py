"""The signed-in user of this browser session.

* ``st.session_state["jarvis_session"]`` holds a :class:`BrowserSession` (the server-side
  session id, the user, a short-lived access token). Every script run re-checks the session in
  PostgreSQL (:meth:`SessionService.check`): a revoked or expired session, a deactivated
  user or a role change takes effect at the next interaction.
* The browser holds its session in the cookie ``jarvis_session``: HttpOnly, ``SameSite=Lax``,
  ``Secure`` on https, set only by a server response. Streamlit cannot send ``Set-Cookie``, so
  after sign-in the page takes a one-time ticket from the server and a tiny invisible component
  posts it to ``/api/v1/auth/browser/session``, whose answer sets the cookie (see
  :mod:`jarvis.api.routes.browser`). Page content waits for that to finish.
* A page load (a new Streamlit session: reload, another tab, Back, a restored browser) reads the
  cookie from the request and resumes the session (:meth:`SessionService.resume_browser`). The
  cookie's token is not rotated on use, so reloads and tabs never race; it is replaced when the
  user's role changes (a new ticket, a new cookie), and ends with its session.
* Logout revokes the session in the database, then the component asks
  ``/api/v1/auth/browser/logout`` to end the session the cookie names and delete the cookie (a
  script cannot). A cookie refused at a page load is deleted through ``/auth/browser/forget``,
  which keeps it if it opens a live session after all (another tab signed in meanwhile).
* Tests may set ``st.session_state["jarvis_principal"]`` to a :class:`Principal` before a run:
  it is turned into a real server-side session (see ``tests/ui/conftest.py::sign_in_as``).
  Only with ``JARVIS_ENV=test``: a dev or production app ignores (and drops) it.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import streamlit as st

from jarvis.api import API_PREFIX
from jarvis.api.routes.browser import SESSION_COOKIE
from jarvis.bootstrap import Services
from jarvis.errors import JarvisError, TokenError
from jarvis.identity import Principal
from jarvis.security.client_ip import client_ip, forwarded_by_untrusted_peer
from jarvis.services.auth import IssuedSession, ResumedSession

log = logging.getLogger(__name__)

PRINCIPAL_KEY = "jarvis_principal"
SESSION_KEY = "jarvis_session"
COOKIE_OP_KEY = "jarvis_cookie_op"
COOKIE_CHECKED_KEY = "jarvis_cookie_checked"
NOTICE_KEY = "jarvis_session_notice"
COOKIE_ACK_KEY = "jarvis_cookie_acked"
COOKIE_NAME = SESSION_COOKIE
#: Re-issue the access token when it has less than this left.
ACCESS_RENEW_MARGIN = timedelta(seconds=60)

# Posts one request to a browser-session route (same origin, JSON) once per page load, then
# tells the server it is done: "done:<nonce>" after a 2xx answer, "failed:<nonce>" otherwise.
_COOKIE_JS = """
export default function (component) {
  const data = component.data;
  if (!data || !data.nonce) return;
  const sent = (window.__jarvisCookieOps = window.__jarvisCookieOps || {});
  if (sent[data.nonce]) return;
  sent[data.nonce] = true;
  const report = (outcome) => component.setStateValue("written", outcome + ":" + data.nonce);
  fetch(data.url, {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(data.body || {}),
  }).then((r) => report(r.ok ? "done" : "failed")).catch(() => report("failed"));
}
"""

_cookie_writer = st.components.v2.component("jarvis_cookie_writer", js=_COOKIE_JS)


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """What this browser session keeps server-side (never the password, never shown)."""

    principal: Principal
    session_id: uuid.UUID
    access_token: str
    access_expires_at: datetime


def client_details(services: Services) -> tuple[str | None, str | None]:
    """(client IP, user agent) of this browser session; ``X-Forwarded-For`` is honoured only
    behind a proxy listed in ``JARVIS_TRUSTED_PROXIES``. Loopback is an address like any other
    (per-IP limits apply); forwarding headers from an untrusted peer are warned about once."""
    try:
        headers = dict(st.context.headers)
        remote = st.context.ip_address
    except Exception:  # no browser (AppTest, bare mode)
        return None, None
    if not headers:  # no browser either: nobody to attribute requests to
        return None, None
    trusted = services.settings.trusted_proxies
    if forwarded_by_untrusted_peer(remote, headers, trusted):
        _warn_untrusted_proxy(remote or "127.0.0.1")
    ip = client_ip(remote, headers, trusted)
    agent = headers.get("User-Agent") or headers.get("user-agent")
    return ip, agent


@functools.lru_cache(maxsize=32)
def _warn_untrusted_proxy(peer: str) -> None:
    """Once per peer and process (the first request through an unlisted proxy)."""
    log.warning(
        "Requests from %s carry X-Forwarded-For / Forwarded headers, but it is not listed in "
        "JARVIS_TRUSTED_PROXIES: every client behind it shares its address for sign-in limits. "
        "Behind a reverse proxy, set JARVIS_TRUSTED_PROXIES=%s (see the README).",
        peer,
        peer,
    )


def _browser_route(name: str) -> str:
    """The path of a browser-session route (the API is mounted below the app's root)."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return (f"/{base}" if base else "") + f"{API_PREFIX}/auth/browser/{name}"


def _queue_cookie(route: str, body: dict[str, Any] | None = None) -> None:
    """Have the browser post to a browser-session route (``session``, ``logout``, ``forget``)."""
    st.session_state[COOKIE_OP_KEY] = {
        "nonce": uuid.uuid4().hex,
        "url": _browser_route(route),
        "body": body or {},
        "wait": route == "session",
    }


def _queue_ticket(services: Services, principal: Principal, session_id: uuid.UUID) -> None:
    """Give the browser a new session cookie (a one-time ticket it trades for the cookie)."""
    try:
        ticket = services.sessions.browser_ticket(principal, session_id)
    except JarvisError:
        log.warning("could not issue a browser session ticket", exc_info=True)
        return
    _queue_cookie("session", {"ticket": ticket})


def _store(
    services: Services, issued: IssuedSession | ResumedSession, *, new_cookie: bool
) -> BrowserSession:
    session = BrowserSession(
        principal=issued.principal,
        session_id=issued.session_id,
        access_token=issued.access_token,
        access_expires_at=issued.access_expires_at,
    )
    st.session_state[SESSION_KEY] = session
    st.session_state[PRINCIPAL_KEY] = issued.principal
    # The cookie read at page load is settled from now on (resumed or replaced).
    st.session_state[COOKIE_CHECKED_KEY] = True
    if new_cookie:
        _queue_ticket(services, issued.principal, issued.session_id)
    return session


def _forget(notice: str | None = None, *, cookie: str | None = None) -> None:
    """Forget the session here; ``cookie``: ``logout`` ends the session the browser's cookie
    names and deletes it, ``forget`` deletes it only if it opens no session."""
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(PRINCIPAL_KEY, None)
    st.session_state[COOKIE_CHECKED_KEY] = True
    if cookie:
        _queue_cookie(cookie)
    else:
        st.session_state.pop(COOKIE_OP_KEY, None)
    if notice:
        st.session_state[NOTICE_KEY] = notice
    else:
        st.session_state.pop(NOTICE_KEY, None)


def _resume_from_cookie(services: Services) -> BrowserSession | None:
    """First run of a browser session (a reload, a new tab): resume with the session cookie."""
    if st.session_state.get(COOKIE_CHECKED_KEY):
        return None
    try:
        token = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # no browser (AppTest)
        token = None
    if not token:
        st.session_state[COOKIE_CHECKED_KEY] = True
        return None
    try:
        # Any other error (the database is down) leaves the cookie to be tried again next run.
        resumed = services.sessions.resume_browser(token)
    except TokenError:
        _forget("Your session has ended. Please sign in again.", cookie="forget")
        return None
    return _store(services, resumed, new_cookie=resumed.reissue)


def current_session(services: Services) -> BrowserSession | None:
    """This browser's live session (re-checked in the database), or None."""
    session: BrowserSession | None = st.session_state.get(SESSION_KEY)
    if session is None:
        trusted = _test_principal(services)
        if trusted is not None:
            ip, agent = client_details(services)
            try:
                issued = services.sessions.open(trusted, ip=ip, user_agent=agent)
            except JarvisError:
                _forget()
                return None
            session = _store(services, issued, new_cookie=True)
        else:
            session = _resume_from_cookie(services)
            if session is None:
                return None
    try:
        principal = services.sessions.check(session.principal.user_id, session.session_id)
    except TokenError:
        _forget("Your session has ended. Please sign in again.", cookie="forget")
        return None
    if principal.role != session.principal.role:
        # A privilege change: the browser's cookie is replaced (the old one stops working).
        _queue_ticket(services, principal, session.session_id)
    if session.access_expires_at - services.clock.now() < ACCESS_RENEW_MARGIN:
        session = replace(
            session,
            access_token=services.sessions.issue_access_token(principal, session.session_id),
            access_expires_at=services.clock.now()
            + timedelta(seconds=services.sessions.tokens.ttl_seconds),
        )
    if principal != session.principal:
        session = replace(session, principal=principal)
    st.session_state[SESSION_KEY] = session
    st.session_state[PRINCIPAL_KEY] = principal
    return session


def _test_principal(services: Services) -> Principal | None:
    """The principal a test placed in the session state (tests only: ``JARVIS_ENV=test``).

    Outside tests nothing but :func:`_store` writes that key, always together with a session;
    a principal without a session is dropped there, never trusted."""
    placed = st.session_state.get(PRINCIPAL_KEY)
    if placed is None:
        return None
    if services.settings.env != "test" or not isinstance(placed, Principal):
        st.session_state.pop(PRINCIPAL_KEY, None)
        log.warning("ignored a principal in the session state without a session")
        return None
    return placed


def current_session_id() -> uuid.UUID | None:
    """The id of this browser's server-side session (after the page guard ran)."""
    session: BrowserSession | None = st.session_state.get(SESSION_KEY)
    return session.session_id if session else None


def end_local_session() -> None:
    """Forget this browser's session (it was revoked already); the browser drops its cookie."""
    _forget(cookie="forget")


def current_principal(services: Services) -> Principal | None:
    """The signed-in user, re-checked against the database on every run."""
    session = current_session(services)
    return session.principal if session else None


def sign_in(services: Services, who: Principal | IssuedSession) -> BrowserSession:
    """Start this browser's session after a successful login or registration."""
    if isinstance(who, Principal):
        ip, agent = client_details(services)
        who = services.sessions.open(who, ip=ip, user_agent=agent)
    st.session_state.pop(NOTICE_KEY, None)
    return _store(services, who, new_cookie=True)


def sign_out(services: Services) -> None:
    """End this browser's session: revoked in the database at once, then the browser asks the
    server to end the session its cookie names and to delete the cookie."""
    session: BrowserSession | None = st.session_state.get(SESSION_KEY)
    if session is not None:
        ip, _agent = client_details(services)
        try:
            services.sessions.logout(session.principal, session.session_id, ip=ip)
        except JarvisError:
            log.warning("logout could not revoke the session", exc_info=True)
    _forget(cookie="logout")


def take_notice() -> str | None:
    """The sign-in page's message ("your session has ended"); it stays until the next sign-in."""
    notice: str | None = st.session_state.get(NOTICE_KEY)
    return notice


def _noop() -> None:
    """Component state callback (the value is read from the result instead)."""


def _has_browser() -> bool:
    try:
        return len(st.context.headers) > 0
    except Exception:  # bare mode
        return False


def write_cookie() -> bool:
    """Render the (invisible) cookie component; call on every run, before the page.

    Returns True unless the browser is still collecting a new session cookie: until the server
    answered its request the app shows no page content, so nothing a user can click (a link, a
    reload) runs ahead of the cookie. Without a browser (AppTest) it is always True. A request
    that failed (a ticket that expired meanwhile) lets the page go on: the session then lasts
    until the tab is closed or reloaded.
    """
    op = st.session_state.get(COOKIE_OP_KEY)
    if not op:
        return True
    result = _cookie_writer(key="jarvis_cookie_writer", data=op, on_written_change=_noop)
    outcome = str(result.get("written") or "") if result is not None else ""
    if outcome in (f"done:{op['nonce']}", f"failed:{op['nonce']}"):
        if outcome.startswith("failed") and st.session_state.get(COOKIE_ACK_KEY) != op["nonce"]:
            log.warning("the browser could not complete a session cookie request")
        st.session_state[COOKIE_ACK_KEY] = op["nonce"]
    if st.session_state.get(COOKIE_ACK_KEY) == op["nonce"] or not op.get("wait"):
        return True
    return not _has_browser()


def skip_cookie_wait() -> None:
    """Carry on without waiting for the cookie (a browser that blocks it): the session then
    lasts until the tab is closed or reloaded."""
    op = st.session_state.get(COOKIE_OP_KEY)
    if op:
        st.session_state[COOKIE_ACK_KEY] = op["nonce"]
