"""HTTP API fixtures: ``create_api()`` over real services on the session's database, called
through ``fastapi.testclient.TestClient`` at ``/api/v1`` exactly as ``jarvis.asgi`` mounts it.

Fixtures
* ``api``        a ``TestClient`` whose relative paths are under ``/api/v1``
                 (``api.get("/auth/me")`` asks ``/api/v1/auth/me``); its services are
                 ``api.app_services`` (also ``api_services``)
* ``api_services`` the :class:`~jarvis.bootstrap.Services` behind ``api`` (to prepare data
                 with ``tests/factories.py``: committed, so use unique emails)
* ``make_api``   ``make_api(**settings)`` another client over new services with some settings
                 changed (a small rate limit, a small body limit); shut down after the test
* ``signup_open`` self-service sign-up is open for the test (``POST /auth/register``), closed
                 again after it

Helpers
* :func:`auth` ``{"Authorization": "Bearer <token>"}``
* :func:`register_and_login` a new account (made by the operator, so sign-up may stay closed)
  signed in through ``POST /auth/login``: ``SignedIn(email, access_token, refresh_token)``
  (a tuple; ``.headers`` is :func:`auth` of its access token, ``.user_id`` the user's id)
* :func:`principal` the ``Principal`` of someone signed in (for services and factories)
* :func:`problem` asserts a response is RFC 9457 problem+json with a status and returns it
* :func:`sse_frames` reads a Server-Sent Events response to its end: ``[SseFrame(id, data)]``

The services run on the real engine with background run workers and LISTEN/NOTIFY, as in the
server: data is committed, so every test makes its own users (unique emails). Each client's
services are shut down (run workers, listener) and their engine disposed of after the test.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from starlette.applications import Starlette
from starlette.routing import Mount

from jarvis.api import API_PREFIX, create_api
from jarvis.bootstrap import Services, build_services
from jarvis.config import Settings
from jarvis.identity import Principal
from jarvis.security.passwords import PasswordHasher
from tests import factories

BASE_URL = "http://testserver" + API_PREFIX
PROBLEM_JSON = "application/problem+json"


class ApiClient(TestClient):
    """A ``TestClient`` at ``/api/v1`` that knows the services behind it."""

    app_services: Services


class SignedIn(NamedTuple):
    """Someone signed in through ``POST /auth/login``: ``email, access, refresh = ...``."""

    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.access_token)

    @property
    def user_id(self) -> uuid.UUID:
        """The ``sub`` claim of the access token (read, not verified: the server did that)."""
        claims = self.access_token.split(".")[1]
        return uuid.UUID(json.loads(base64.urlsafe_b64decode(claims + "==="))["sub"])


def auth(token: str) -> dict[str, str]:
    """The ``Authorization`` header for an access token or a personal API key."""
    return {"Authorization": f"Bearer {token}"}


def register_and_login(
    api: ApiClient, email: str | None = None, password: str = factories.PASSWORD, *, name: str = ""
) -> SignedIn:
    """A new account (registered by the operator, so sign-up may stay closed), signed in
    through the API. The email is unique unless given."""
    email = email or factories.unique_email("api")
    factories.account(api.app_services, email, password, name=name)
    response = api.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    return SignedIn(email, body["access_token"], body["refresh_token"])


def principal(api: ApiClient, who: SignedIn) -> Principal:
    """``who`` as services see them (to prepare their data with services or factories)."""
    return api.app_services.accounts.principal_for_email(who.email)


def problem(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``response`` is problem+json with ``status`` (and ``code``); its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    if code is not None:
        assert body["code"] == code, body
    return body


def _client(services: Services) -> ApiClient:
    api = create_api(services.settings)
    api.state.services = services
    server = Starlette(routes=[Mount(API_PREFIX, app=api)])  # as jarvis.asgi mounts it
    client = ApiClient(server, base_url=BASE_URL)
    client.app_services = services
    return client


@pytest.fixture
def make_api(settings: Settings, fast_hasher: PasswordHasher) -> Iterator[Callable[..., ApiClient]]:
    """``make_api(**settings_changes)``: a client over new services on the session database."""
    made: list[tuple[ApiClient, Services]] = []

    def make(**changes: Any) -> ApiClient:
        services = build_services(settings.model_copy(update=changes), hasher=fast_hasher)
        client = _client(services)
        made.append((client, services))
        return client

    yield make
    for client, services in made:
        client.close()
        services.shutdown()
        services.engine.dispose()


@pytest.fixture
def api(make_api: Callable[..., ApiClient]) -> ApiClient:
    """The API over real services (default settings), at ``/api/v1``."""
    return make_api()


@pytest.fixture
def api_services(api: ApiClient) -> Services:
    return api.app_services


@pytest.fixture
def signup_open(api_services: Services) -> Iterator[None]:
    """Open self-service sign-up for this test (the session database keeps it closed)."""
    api_services.accounts.set_signup_open(factories.OPERATOR, True)
    yield
    api_services.accounts.set_signup_open(factories.OPERATOR, False)


class SseFrame(NamedTuple):
    """One Server-Sent Event: its ``id`` (the run log's sequence number) and JSON ``data``."""

    id: int | None
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.data["type"])


def sse_frames(response: Response) -> list[SseFrame]:
    """Read an SSE response to its end: every ``id:`` / ``data:`` frame in order (comments
    such as pings are skipped). Use with ``api.stream(...)``, or on a plain response."""
    assert response.headers["content-type"].startswith("text/event-stream"), response.headers
    frames: list[SseFrame] = []
    seq: int | None = None
    data: list[str] = []
    for line in [*response.iter_lines(), ""]:
        if not line:
            if data:
                frames.append(SseFrame(seq, json.loads("\n".join(data))))
            seq, data = None, []
        elif line.startswith("id:"):
            seq = int(line[3:].strip())
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return frames
