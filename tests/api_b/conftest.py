"""The HTTP API over a fresh database: memory, knowledge graph, admin, and the schema fuzz.

* ``api_b``   (session) the ``/api/v1`` app from ``create_api(settings)`` on a fresh migrated
              database (:func:`serve`), its services (real engine, committed data), a
              ``TestClient`` and the administrator (the database's first account, registered
              through the API; it opens sign-up so later accounts can register themselves)
* ``client``  that ``TestClient``
* ``account`` registers a new account through ``POST /auth/register`` and signs it in with
              ``POST /auth/login``: ``account("ada")`` -> :class:`Account` (unique email)
* ``admin``   the administrator's :class:`Account`
* :func:`problem` asserts a problem+json answer (status, and the field it names)

Every account's data is committed: tests use the accounts they make, never fixed emails. The
schema fuzz (``test_api_schema_fuzz.py``) serves its own app on its own database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jarvis.api import create_api
from jarvis.bootstrap import Services, build_services
from jarvis.config import Settings
from jarvis.security.passwords import PasswordHasher

PASSWORD = "correct horse battery"  # noqa: S105 - a test account's password
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Account:
    """A signed-in account: ``headers`` carry its access token."""

    user_id: uuid.UUID
    email: str
    role: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass(frozen=True)
class ApiB:
    app: FastAPI
    settings: Settings
    services: Services
    client: TestClient
    admin: Account


def sign_up(client: TestClient, tag: str) -> Account:
    """Register through the API, then sign in (the login's token is the one used)."""
    email = f"{tag}-{uuid.uuid4().hex[:10]}@example.com"
    registered = client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "display_name": tag}
    )
    assert registered.status_code == 201, registered.text
    login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    body = login.json()
    return Account(
        user_id=uuid.UUID(body["user"]["id"]),
        email=email,
        role=body["user"]["role"],
        access_token=body["access_token"],
    )


def problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, object]:
    """Assert ``response`` is a problem+json with ``status`` (naming ``field`` when given)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, object] = response.json()
    assert body["status"] == status
    if field is not None:
        fields = [e["field"] for e in body.get("errors") or []]  # type: ignore[attr-defined]
        assert any(f == field or f.endswith(f".{field}") for f in fields), (field, body)
    return body


@contextmanager
def serve(settings: Settings, app: FastAPI | None = None) -> Iterator[ApiB]:
    """The API (``app``, or a new one) on ``settings``' (fresh) database, its first account
    (the admin) signed in and sign-up opened; services shut down and the engine disposed of
    on exit."""
    settings = settings.model_copy(
        # Hundreds of requests a minute from one client: the schema fuzz is not an abuser.
        update={"api_requests_per_minute": 100_000, "api_requests_per_minute_per_ip": 100_000}
    )
    app = app or create_api(settings)
    services = build_services(
        settings, hasher=PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1)
    )
    app.state.services = services
    try:
        with TestClient(app, base_url="http://testserver") as client:
            admin = sign_up(client, "admin")  # the first account of the database: the admin
            assert admin.role == "admin"
            opened = client.put("/admin/signup", json={"open": True}, headers=admin.headers)
            assert opened.status_code == 200, opened.text
            yield ApiB(app, settings, services, client, admin)
    finally:
        services.shutdown()
        services.engine.dispose()


@pytest.fixture(scope="session")
def api_b(fresh_database: Callable[[], Settings]) -> Iterator[ApiB]:
    with serve(fresh_database()) as api:
        yield api


@pytest.fixture
def client(api_b: ApiB) -> TestClient:
    return api_b.client


@pytest.fixture
def admin(api_b: ApiB) -> Account:
    return api_b.admin


@pytest.fixture
def account(api_b: ApiB) -> Callable[[str], Account]:
    return lambda tag="user": sign_up(api_b.client, tag)
