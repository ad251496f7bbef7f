"""The production path: committed data, runs on real workers, followers woken by
LISTEN/NOTIFY while the model is still writing; the answer streams through the SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterator

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
from tests.api_oai.conftest import BASE_URL
from tests.llm_wire_server import Reply, WireServer, openai_text_stream, openai_usage

PIECES = [f"word{i} " for i in range(12)]


@pytest.fixture
def live(committed_services: Services, wire: WireServer) -> Iterator[Services]:
    def upstream(key: str | None, _url: str | None, _retry: RetryPolicy, timeout: float):  # type: ignore[no-untyped-def]
        return OpenAIProvider(key, name=OPENAI, base_url=wire.url + "/v1", timeout=timeout)

    services = build_services(
        committed_services.settings,
        engine=committed_services.engine,
        providers=ProviderFactory(committed_services.secrets, builders={OPENAI: upstream}),
        recover_runs=False,
        run_beat_seconds=0.2,
    )
    yield services
    services.shutdown()


def test_a_streamed_answer_from_a_worker(
    live: Services, wire: WireServer, committed_user: Callable[[str], Principal]
) -> None:
    # The upstream pauses mid-answer: the API follows the run while it is still going.
    wire.script(
        Reply.sse(openai_text_stream(PIECES, usage=openai_usage(30, 12)), stall_after=6, stall=0.3)
    )
    who = committed_user("oai-live")
    live.secrets.create(who, OPENAI, "default", "sk-test-" + "b" * 40)
    key = live.api_keys.create(who, "live").secret
    api = create_api(live.settings)
    api.state.services = live
    with TestClient(Starlette(routes=[Mount(API_PREFIX, app=api)])) as http:
        client = openai.OpenAI(base_url=BASE_URL, api_key=key, http_client=http, max_retries=0)
        chunks = list(
            client.chat.completions.create(
                model="openai/gpt-4o-mini",
                messages=[{"role": "user", "content": "count"}],
                stream=True,
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(PIECES)
        assert chunks[-1].choices[0].finish_reason == "stop"
        done = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "again"}]
        )
    assert done.choices[0].message.content == "".join(PIECES)  # same text both ways
    assert done.usage is not None and done.usage.total_tokens == 42
