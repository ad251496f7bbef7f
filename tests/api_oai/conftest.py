"""The OpenAI-compatible API driven by the real ``openai`` SDK.

* ``wire``         a local server speaking OpenAI's wire format: the *upstream* model
* ``oai_services`` services on the test's rolled-back transaction whose OpenAI provider is the
                   real adapter pointed at ``wire`` (runs execute inline, when they start)
* ``http``         FastAPI's TestClient on ``/api/v1`` (an ``httpx.Client``: the SDK's transport)
* ``person``       a user with an OpenAI key in the vault and a personal API key
* ``oai``          ``openai.OpenAI`` acting as ``person``
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import openai
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from jarvis.api import API_PREFIX, create_api
from jarvis.bootstrap import Services, build_services
from jarvis.identity import Principal
from jarvis.llm.errors import RetryPolicy
from jarvis.llm.factory import ProviderFactory
from jarvis.llm.models import OPENAI
from jarvis.llm.openai_provider import OpenAIProvider
from tests import factories
from tests.llm_wire_server import WireServer

BASE_URL = f"http://testserver{API_PREFIX}/openai/v1"


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture
def oai_settings() -> dict[str, object]:
    """Settings the API under test runs with (a module may override this fixture)."""
    return {}


@pytest.fixture
def oai_services(services: Services, wire: WireServer, oai_settings: dict[str, object]) -> Services:
    def upstream(key: str | None, _url: str | None, _retry: RetryPolicy, timeout: float):  # type: ignore[no-untyped-def]
        return OpenAIProvider(
            key, name=OPENAI, base_url=wire.url + "/v1", timeout=timeout, retry=RetryPolicy(1)
        )

    providers = ProviderFactory(services.secrets, builders={OPENAI: upstream})
    return build_services(
        services.settings.model_copy(update=oai_settings),
        engine=services.engine,
        uow=services.uow,
        clock=services.clock,
        tools=services.tools,
        embedder=services.embedder,
        providers=providers,
        recover_runs=False,
    )


@pytest.fixture
def http(oai_services: Services) -> Iterator[TestClient]:
    api = create_api(oai_services.settings)
    api.state.services = oai_services
    with TestClient(Starlette(routes=[Mount(API_PREFIX, app=api)])) as client:
        yield client


@dataclass(frozen=True)
class Person:
    principal: Principal
    key: str


@pytest.fixture
def make_person(oai_services: Services) -> Callable[..., Person]:
    def make(name: str = "oai", *, openai_key: bool = True, **kw: object) -> Person:
        principal = factories.user(oai_services.uow, name, **kw)  # type: ignore[arg-type]
        if openai_key:
            oai_services.secrets.create(principal, OPENAI, "default", "sk-test-" + "a" * 40)
        created = oai_services.api_keys.create(principal, "sdk")
        return Person(principal, created.secret)

    return make


@pytest.fixture
def person(make_person: Callable[..., Person]) -> Person:
    return make_person()


@pytest.fixture
def client_for(http: TestClient) -> Callable[[str], openai.OpenAI]:
    def make(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=BASE_URL, api_key=key, http_client=http, max_retries=0)

    return make


@pytest.fixture
def oai(client_for: Callable[[str], openai.OpenAI], person: Person) -> openai.OpenAI:
    return client_for(person.key)
