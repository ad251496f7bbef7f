"""Jarvis through the real ``openai`` SDK: models, completions (whole and streamed), usage,
context from earlier messages, and errors in OpenAI's shape with the right status."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal

import openai
import pytest
from fastapi.testclient import TestClient

from jarvis.bootstrap import Services
from jarvis.llm.offline import OFFLINE_MODEL
from tests.api_oai.conftest import BASE_URL, Person
from tests.llm_wire_server import Reply, WireServer, openai_text_stream, openai_usage

PIECES = ["Hello", " from", " the", " scripted", " model."]
ANSWER = "".join(PIECES)


def script_answer(wire: WireServer, *, finish: str = "stop") -> None:
    wire.script(Reply.sse(openai_text_stream(PIECES, usage=openai_usage(11, 7), finish=finish)))


def test_models_lists_only_what_the_user_can_use(
    oai: openai.OpenAI, make_person: Callable[..., Person], client_for: Callable[..., openai.OpenAI]
) -> None:
    ids = [m.id for m in oai.models.list()]
    assert f"offline/{OFFLINE_MODEL}" in ids
    assert "openai/gpt-4o-mini" in ids
    assert not any(i.startswith("anthropic/") for i in ids)  # no Anthropic key in the vault
    assert oai.models.retrieve("openai/gpt-4o-mini").owned_by == "openai"

    keyless = client_for(make_person("keyless", openai_key=False).key)
    assert [m.id for m in keyless.models.list()] == [f"offline/{OFFLINE_MODEL}"]


def test_a_completion_is_the_scripted_answer_with_its_usage(
    oai: openai.OpenAI, wire: WireServer, oai_services: Services, person: Person
) -> None:
    script_answer(wire)
    done = oai.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert done.object == "chat.completion"
    assert done.model == "openai/gpt-4o-mini"
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].message.content == ANSWER
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (11, 7)
    assert done.usage.total_tokens == 18
    assert wire.requests[0].body["model"] == "gpt-4o-mini"  # what the upstream was asked

    # A normal run of the user: recorded with its usage, in a conversation of its own.
    run_id = done.id.removeprefix("chatcmpl-")
    run = oai_services.runs.get(person.principal, uuid.UUID(run_id))
    assert (run.status, run.total_tokens, run.provider, run.model) == (
        "completed",
        18,
        "openai",
        "gpt-4o-mini",
    )


def test_streaming_reassembles_the_same_text_and_reports_usage_last(
    oai: openai.OpenAI, wire: WireServer
) -> None:
    script_answer(wire)
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",  # a bare model name the user has once
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 7)


def test_a_model_cut_at_its_token_cap_finishes_with_length(
    oai: openai.OpenAI, wire: WireServer
) -> None:
    script_answer(wire, finish="length")
    done = oai.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Go on"}]
    )
    assert done.choices[0].finish_reason == "length"


def test_earlier_messages_are_the_runs_context(oai: openai.OpenAI, wire: WireServer) -> None:
    script_answer(wire)
    oai.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer like a pirate."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
        ],
    )
    sent = [(m["role"], m["content"]) for m in wire.requests[0].body["messages"]]
    assert sent[0][0] == "system" and "Jarvis" in sent[0][1]  # Jarvis's own prompt leads
    assert sent[1][0] == "user" and sent[1][1].endswith("Answer like a pirate.")
    assert sent[2:] == [
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
    ]


def test_the_offline_model_answers_without_any_key(
    make_person: Callable[..., Person], client_for: Callable[..., openai.OpenAI]
) -> None:
    client = client_for(make_person("offline", openai_key=False).key)
    done = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": "hello"}]
    )
    assert done.model == f"offline/{OFFLINE_MODEL}"
    assert done.choices[0].message.content


def test_a_bad_key_is_401_in_openais_shape(
    client_for: Callable[..., openai.OpenAI], http: TestClient
) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for("jrv_00000000_not-a-real-key").models.list()
    assert caught.value.status_code == 401
    raw = http.post(f"{BASE_URL}/chat/completions", json={"model": "x", "messages": []})
    assert raw.status_code == 401
    body = raw.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["message"]


def test_unknown_model_and_bad_input_are_openai_errors(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(
            model="anthropic/claude-haiku-4-5",  # no Anthropic key: not the user's
            messages=[{"role": "user", "content": "hi"}],
        )
    assert caught.value.body["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(
            model="offline", messages=[{"role": "assistant", "content": "no question"}]
        )
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model="offline", messages=[{"role": "wizard"}])  # type: ignore[list-item,typeddict-item]
    assert bad.value.body["code"] == "validation_error"  # type: ignore[index]


def test_the_users_budget_applies(
    make_person: Callable[..., Person],
    client_for: Callable[..., openai.OpenAI],
    wire: WireServer,
) -> None:
    script_answer(wire)
    broke = client_for(make_person("broke", budget=Decimal("0")).key)
    with pytest.raises(openai.APIStatusError) as caught:
        broke.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 402
    assert caught.value.body["type"] == "insufficient_quota"  # type: ignore[index]
    assert "budget" in caught.value.message
    assert wire.requests == []  # refused before any model was called


def test_a_failed_run_is_an_error_with_the_upstream_status(
    oai: openai.OpenAI, wire: WireServer
) -> None:
    wire.script(Reply.error(500, "upstream exploded"))
    with pytest.raises(openai.APIStatusError) as caught:
        oai.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502
    wire.script(Reply.error(500, "upstream exploded"))
    stream = oai.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_the_root_v1_base_url_reaches_the_same_endpoints(
    oai_services: Services, wire: WireServer, person: Person
) -> None:
    """OpenAI clients assume ``http://host/v1``: the server answers there too (jarvis.asgi)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from jarvis.api import API_PREFIX, create_api
    from jarvis.asgi import OPENAI_ALIAS, openai_alias

    api = create_api(oai_services.settings)
    api.state.services = oai_services
    app = Starlette(routes=[Mount(API_PREFIX, app=api), Mount(OPENAI_ALIAS, app=openai_alias(api))])
    with TestClient(app) as http:
        client = openai.OpenAI(
            base_url="http://testserver/v1", api_key=person.key, http_client=http, max_retries=0
        )
        assert "openai/gpt-4o-mini" in [m.id for m in client.models.list()]
        script_answer(wire)
        done = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
        )
        assert done.choices[0].message.content == ANSWER
        # Only the OpenAI-compatible routes live under /v1; the rest of the API does not.
        other = http.get("/v1/auth/me", headers={"Authorization": f"Bearer {person.key}"})
        assert other.status_code == 404
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(
                base_url="http://testserver/v1", api_key="jrv_wrong", http_client=http
            ).models.list()
