"""The browser-session routes over HTTP (``/api/v1/auth/browser``), mounted as ``jarvis.asgi``
mounts the API, on the real services: the cookie is set by the server, HttpOnly, SameSite,
Secure only over https; a ticket works once and briefly; cross-site requests are refused;
logout ends the session and deletes the cookie."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from jarvis.api import API_PREFIX, create_api
from jarvis.bootstrap import Services
from jarvis.clock import FixedClock
from jarvis.errors import TokenError
from jarvis.services.auth import BROWSER_TICKET_TTL, IssuedSession
from tests import factories
from tests.factories import PASSWORD as PW

ROUTE = f"{API_PREFIX}/auth/browser"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client_for(services: Services) -> Callable[..., TestClient]:
    def make(base_url: str = "http://testserver") -> TestClient:
        api = create_api(services.settings)
        api.state.services = services
        app = Starlette(routes=[Mount(API_PREFIX, app=api)])
        return TestClient(app, base_url=base_url)

    return make


@pytest.fixture
def issued(services: Services) -> IssuedSession:
    factories.account(services, "cookie@example.com")
    return services.sign_in.login("cookie@example.com", PW)


def ticket_of(services: Services, issued: IssuedSession) -> str:
    return services.sessions.browser_ticket(issued.principal, issued.session_id)


def set_cookie_header(response: object) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    assert len(headers) == 1, headers
    return str(headers[0])


def test_the_ticket_buys_an_httponly_cookie_of_the_session(
    services: Services, issued: IssuedSession, client_for: Callable[..., TestClient]
) -> None:
    client = client_for()
    response = client.post(
        f"{ROUTE}/session",
        json={"ticket": ticket_of(services, issued)},
        headers={"Origin": "http://testserver"},
    )
    assert response.status_code == 204, response.text
    header = set_cookie_header(response)
    attributes = [part.strip().lower() for part in header.split(";")]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" not in attributes  # plain http
    max_age = int(next(a for a in attributes if a.startswith("max-age=")).split("=")[1])
    assert abs(max_age - services.settings.refresh_absolute_ttl_seconds) < 5
    token = client.cookies.get("jarvis_session")
    assert token and len(token) >= 43
    assert services.sessions.resume_browser(token).session_id == issued.session_id


def test_over_https_the_cookie_is_secure(
    services: Services, issued: IssuedSession, client_for: Callable[..., TestClient]
) -> None:
    client = client_for("https://testserver")
    response = client.post(
        f"{ROUTE}/session",
        json={"ticket": ticket_of(services, issued)},
        headers={"Origin": "https://testserver"},
    )
    assert response.status_code == 204, response.text
    attributes = [p.strip().lower() for p in set_cookie_header(response).split(";")]
    assert "secure" in attributes and "httponly" in attributes


def test_a_ticket_works_once(
    services: Services, issued: IssuedSession, client_for: Callable[..., TestClient]
) -> None:
    client = client_for()
    ticket = ticket_of(services, issued)
    assert client.post(f"{ROUTE}/session", json={"ticket": ticket}).status_code == 204
    again = client_for().post(f"{ROUTE}/session", json={"ticket": ticket})
    assert again.status_code == 401
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "set-cookie" not in again.headers
    assert ticket not in again.text


def test_an_expired_ticket_is_refused(
    services: Services,
    issued: IssuedSession,
    clock: FixedClock,
    client_for: Callable[..., TestClient],
) -> None:
    ticket = ticket_of(services, issued)
    clock.advance(seconds=BROWSER_TICKET_TTL.total_seconds() + 1)
    response = client_for().post(f"{ROUTE}/session", json={"ticket": ticket})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "https://testserver"},  # another scheme is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ],
)
def test_cross_site_requests_are_refused(
    services: Services,
    issued: IssuedSession,
    client_for: Callable[..., TestClient],
    headers: dict[str, str],
) -> None:
    client = client_for()
    ticket = ticket_of(services, issued)
    body = json.dumps({"ticket": ticket})
    refused = client.post(f"{ROUTE}/session", content=body, headers={**JSON, **headers})
    assert refused.status_code == 403, refused.text
    assert "set-cookie" not in refused.headers
    # The ticket was not spent by the refused request; the real page still gets its cookie.
    ok = client.post(f"{ROUTE}/session", content=body, headers=JSON)
    assert ok.status_code == 204
    # Logout and forget are guarded alike (a cross-site page cannot sign the user out).
    assert (
        client.post(f"{ROUTE}/logout", content="{}", headers={**JSON, **headers}).status_code == 403
    )
    token = client.cookies.get("jarvis_session")
    assert token and services.sessions.resume_browser(token).session_id == issued.session_id


def test_logout_ends_the_cookies_session_and_deletes_it(
    services: Services, issued: IssuedSession, client_for: Callable[..., TestClient]
) -> None:
    client = client_for()
    client.post(f"{ROUTE}/session", json={"ticket": ticket_of(services, issued)})
    token = client.cookies.get("jarvis_session")
    assert token
    response = client.post(f"{ROUTE}/logout", json={})
    assert response.status_code == 204
    attributes = [p.strip().lower() for p in set_cookie_header(response).split(";")]
    assert "max-age=0" in attributes and "httponly" in attributes and "path=/" in attributes
    assert client.cookies.get("jarvis_session") is None
    with pytest.raises(TokenError):
        services.sessions.resume_browser(token)
    with pytest.raises(TokenError):
        services.sessions.refresh(issued.refresh_token)
    # Without a cookie it still answers (and deletes nothing that is not there).
    assert client.post(f"{ROUTE}/logout", json={}).status_code == 204


def test_forget_deletes_only_a_dead_cookie(
    services: Services, issued: IssuedSession, client_for: Callable[..., TestClient]
) -> None:
    client = client_for()
    client.post(f"{ROUTE}/session", json={"ticket": ticket_of(services, issued)})
    kept = client.post(f"{ROUTE}/forget", json={})
    assert kept.status_code == 204 and "set-cookie" not in kept.headers
    assert client.cookies.get("jarvis_session")
    services.sessions.logout(issued.principal, issued.session_id)
    gone = client.post(f"{ROUTE}/forget", json={})
    assert gone.status_code == 204 and "max-age=0" in set_cookie_header(gone).lower()


def test_under_a_root_path_the_cookie_is_scoped_to_it(
    services: Services, issued: IssuedSession
) -> None:
    api = create_api(services.settings)
    api.state.services = services
    app = Starlette(routes=[Mount(API_PREFIX, app=api)])
    client = TestClient(app, root_path="/jarvis")
    response = client.post(f"/jarvis{ROUTE}/session", json={"ticket": ticket_of(services, issued)})
    assert response.status_code == 204, response.text
    assert "path=/jarvis/" in set_cookie_header(response).lower()
