"""The signed-in user of this browser session.

* ``st.session_state["jarvis_session"]`` holds a :class:`BrowserSession` (the server-side
  session id, the user, a short-lived access token). Every script run re-checks the session in
  PostgreSQL (:meth:`SessionService.check`): a revoked or expired session, a deactivated
  user or a role change takes effect at the next interaction.
* A cookie (``jarvis_refresh``) carries the opaque refresh token, so a browser reload (a new
  Streamlit session) signs the user back in: the token is rotated and the cookie rewritten.
  Streamlit cannot send ``Set-Cookie`` headers, so a tiny inline component writes the cookie
  with JavaScript (``SameSite=Strict``, ``Secure`` on https); it is therefore not HttpOnly —
  pages never render raw HTML, which is what keeps scripts out.
* When the browser acknowledges a new cookie, the server marks that refresh token confirmed:
  until then, the token it replaced still works for a few seconds (two quick reloads, tabs
  restored at once), see ``SessionService.refresh``.
* Logout revokes the session in the database *and* deletes the cookie; even a cookie that
  survived would be refused, so a reload after logout shows the sign-in page. A reload whose
  cookie is refused deletes it only if the browser still holds that very value (another tab may
  have stored a fresh one meanwhile).
* Tests may set ``st.session_state["jarvis_principal"]`` to a :class:`Principal` before a run:
  it is turned into a real server-side session (see ``tests/ui/conftest.py::sign_in_as``).
  Only with ``JARVIS_ENV=test``: a dev or production app ignores (and drops) it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import streamlit as st

from jarvis.bootstrap import Services
from jarvis.errors import JarvisError, TokenError
from jarvis.identity import Principal
from jarvis.security.client_ip import client_ip, forwarded_by_untrusted_peer
from jarvis.services.auth import IssuedSession

log = logging.getLogger(__name__)

PRINCIPAL_KEY = "jarvis_principal"
SESSION_KEY = "jarvis_session"
COOKIE_OP_KEY = "jarvis_cookie_op"
COOKIE_CHECKED_KEY = "jarvis_cookie_checked"
NOTICE_KEY = "jarvis_session_notice"
COOKIE_ACK_KEY = "jarvis_cookie_acked"
COOKIE_CONFIRMED_KEY = "jarvis_cookie_confirmed"
COOKIE_NAME = "jarvis_refresh"
#: Re-issue the access token when it has less than this left.
ACCESS_RENEW_MARGIN = timedelta(seconds=60)

_COOKIE_JS = """
export default function (component) {
  const data = component.data;
  if (!data || !data.nonce) return;
  // Each write happens once per page load, however often the script reruns.
  const done = (window.__jarvisCookieWrites = window.__jarvisCookieWrites || {});
  if (done[data.nonce]) return;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  // Tell the server the browser now holds the new cookie (this reruns the script).
  const ack = () => {
    done[data.nonce] = true;
    component.setStateValue("written", data.nonce);
  };
  if (data.value) {
    document.cookie = data.name + "=" + encodeURIComponent(data.value) + "; Path=/; Max-Age="
      + data.max_age + "; SameSite=Strict" + secure;
    return ack();
  }
  const remove = () => {
    document.cookie = data.name + "=; Path=/; Max-Age=0; SameSite=Strict" + secure;
  };
  if (!data.only_if_sha256) {
    remove();
    return ack();
  }
  // Delete a refused cookie only if it is still the one presented: another tab may have
  // stored a fresh cookie meanwhile. Without crypto.subtle (not a secure context) keep it.
  done[data.nonce] = true;
  const prefix = data.name + "=";
  const found = document.cookie.split("; ").find((c) => c.startsWith(prefix));
  if (!found || !(window.crypto && window.crypto.subtle)) return ack();
  const bytes = new TextEncoder().encode(decodeURIComponent(found.slice(prefix.length)));
  window.crypto.subtle.digest("SHA-256", bytes).then((digest) => {
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"));
    if (hex.join("") === data.only_if_sha256) remove();
  }).catch(() => {}).finally(ack);
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


def _queue_cookie(value: str | None, max_age: int = 0, *, only_if: str | None = None) -> None:
    """Write the cookie (``value``) or delete it; ``only_if``: delete it only while the browser
    still holds that value (compared by SHA-256 in the browser)."""
    st.session_state[COOKIE_OP_KEY] = {
        "nonce": uuid.uuid4().hex,
        "name": COOKIE_NAME,
        "value": value or "",
        "max_age": max(0, int(max_age)),
        "only_if_sha256": hashlib.sha256(only_if.encode()).hexdigest() if only_if else "",
    }


def _store(services: Services, issued: IssuedSession) -> BrowserSession:
    session = BrowserSession(
        principal=issued.principal,
        session_id=issued.session_id,
        access_token=issued.access_token,
        access_expires_at=issued.access_expires_at,
    )
    st.session_state[SESSION_KEY] = session
    st.session_state[PRINCIPAL_KEY] = issued.principal
    # The cookie read at page load is stale from now on (rotated or replaced).
    st.session_state[COOKIE_CHECKED_KEY] = True
    max_age = (issued.refresh_expires_at - services.clock.now()).total_seconds()
    _queue_cookie(issued.refresh_token, int(max_age))
    return session


def _forget(notice: str | None = None, *, refused_cookie: str | None = None) -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(PRINCIPAL_KEY, None)
    st.session_state[COOKIE_CHECKED_KEY] = True
    _queue_cookie(None, only_if=refused_cookie)
    if notice:
        st.session_state[NOTICE_KEY] = notice
    else:
        st.session_state.pop(NOTICE_KEY, None)


def _resume_from_cookie(services: Services) -> BrowserSession | None:
    """First run of a browser session (a reload): sign back in with the refresh cookie."""
    if st.session_state.get(COOKIE_CHECKED_KEY):
        return None
    try:
        token = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # no browser (AppTest)
        token = None
    if not token:
        st.session_state[COOKIE_CHECKED_KEY] = True
        return None
    ip, agent = client_details(services)
    try:
        # Any other error (the database is down) leaves the cookie to be tried again next run.
        issued = services.sessions.refresh(token, ip=ip, user_agent=agent)
    except TokenError:
        presented = token if isinstance(token, str) else None
        _forget("Your session has ended. Please sign in again.", refused_cookie=presented)
        return None
    return _store(services, issued)


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
            session = _store(services, issued)
        else:
            session = _resume_from_cookie(services)
            if session is None:
                return None
    try:
        principal = services.sessions.check(session.principal.user_id, session.session_id)
    except TokenError:
        _forget("Your session has ended. Please sign in again.")
        return None
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
    """Forget this browser's session without another server call (it was revoked already)."""
    _forget()


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
    return _store(services, who)


def sign_out(services: Services) -> None:
    """End this browser's session: revoked in the database, cookie deleted."""
    session: BrowserSession | None = st.session_state.get(SESSION_KEY)
    if session is not None:
        ip, _agent = client_details(services)
        try:
            services.sessions.logout(session.principal, session.session_id, ip=ip)
        except JarvisError:
            log.warning("logout could not revoke the session", exc_info=True)
    _forget()


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


def write_cookie(services: Services | None = None) -> bool:
    """Render the (invisible) cookie writer; call on every run, before the page.

    Returns True when the browser holds the current cookie — it acknowledged the last write,
    or there is nothing to write, or there is no browser (AppTest). Until then the app shows
    no page content, so nothing a user can click (a link, a reload) runs ahead of the cookie.
    At the acknowledgement of a new refresh token, ``services`` records it as confirmed.
    """
    op = st.session_state.get(COOKIE_OP_KEY)
    if not op:
        return True
    result = _cookie_writer(key="jarvis_cookie_writer", data=op, on_written_change=_noop)
    if result is not None and result.get("written") == op["nonce"]:
        st.session_state[COOKIE_ACK_KEY] = op["nonce"]
        if op["value"] and services and st.session_state.get(COOKIE_CONFIRMED_KEY) != op["nonce"]:
            st.session_state[COOKIE_CONFIRMED_KEY] = op["nonce"]
            try:
                services.sessions.confirm(op["value"])
            except JarvisError:
                log.warning("could not record the cookie acknowledgement", exc_info=True)
    if st.session_state.get(COOKIE_ACK_KEY) == op["nonce"]:
        return True
    return not _has_browser()


def skip_cookie_wait() -> None:
    """Carry on without waiting for the cookie (a browser that blocks it): the session then
    lasts until the tab is closed or reloaded."""
    op = st.session_state.get(COOKIE_OP_KEY)
    if op:
        st.session_state[COOKIE_ACK_KEY] = op["nonce"]
