"""Conversations and runs over HTTP: CRUD (another user's conversation is a 404), the
orchestrator's SSE stream, run status, resuming the event log with ``Last-Event-ID``, Stop,
and ``POST /chat`` waiting for the answer. Runs execute on the server's real workers."""

from __future__ import annotations

import threading
import time
import uuid

import anyio
import httpx
from sqlalchemy import Engine, text

from jarvis.services.chat import events as ev
from tests import factories
from tests.api.conftest import (
    BASE_URL,
    ApiClient,
    SignedIn,
    principal,
    problem,
    register_and_login,
    sse_frames,
)
from tests.async_support import run_async
from tests.llm_wire_server import Reply, WireServer, openai_text_stream, openai_usage

ARITHMETIC = "what is 2*(3+4)"


def _run(api: ApiClient, me: SignedIn, message: str, **body: object) -> list:  # type: ignore[type-arg]
    with api.stream(
        "POST", "/orchestrator/run", json={"message": message, **body}, headers=me.headers
    ) as response:
        assert response.status_code == 200
        return sse_frames(response)


def test_conversations_crud(api: ApiClient) -> None:
    me = register_and_login(api)
    created = api.post("/conversations", json={"title": "Trip plans"}, headers=me.headers)
    assert created.status_code == 201, created.text
    conv = created.json()
    assert conv["title"] == "Trip plans" and conv["provider"] == "offline" and conv["model"]

    listed = api.get("/conversations", headers=me.headers).json()
    assert [c["id"] for c in listed] == [conv["id"]]

    renamed = api.patch(
        f"/conversations/{conv['id']}", json={"title": "Holiday"}, headers=me.headers
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Holiday"
    one = api.get(f"/conversations/{conv['id']}", headers=me.headers).json()
    assert one["title"] == "Holiday" and one["turns"] == []

    assert api.delete(f"/conversations/{conv['id']}", headers=me.headers).status_code == 204
    problem(api.get(f"/conversations/{conv['id']}", headers=me.headers), 404, "not_found_error")
    assert api.get("/conversations", headers=me.headers).json() == []


def test_another_users_conversation_is_not_found_and_stays_as_it_was(api: ApiClient) -> None:
    alice, mallory = register_and_login(api), register_and_login(api)
    conv = api.post("/conversations", json={"title": "Alice's"}, headers=alice.headers).json()
    path = f"/conversations/{conv['id']}"

    problem(api.get(path, headers=mallory.headers), 404, "not_found_error")
    problem(api.patch(path, json={"title": "pwned"}, headers=mallory.headers), 404)
    problem(api.delete(path, headers=mallory.headers), 404)
    assert api.get("/conversations", headers=mallory.headers).json() == []
    assert api.get(path, headers=alice.headers).json()["title"] == "Alice's"
    # ... nor can a run be started in it.
    started = api.post(
        "/runs", json={"message": "hi", "conversation_id": conv["id"]}, headers=mallory.headers
    )
    problem(started, 404)


def test_orchestrator_run_streams_the_run_as_sse_to_its_end(api: ApiClient) -> None:
    me = register_and_login(api)
    frames = _run(api, me, ARITHMETIC)

    assert [f.id for f in frames] == list(range(1, len(frames) + 1))  # gap-free sequence
    assert frames[0].type == "run_started" and frames[-1].type == "run_completed"
    assert "tool_call_started" in [f.type for f in frames]
    calc = next(f.data for f in frames if f.type == "tool_call_finished")
    assert calc["tool_id"] == "calculator" and calc["status"] == "ok"
    assert "14" in frames[-1].data["text"]
    run_id = frames[0].data["run_id"]

    run = api.get(f"/runs/{run_id}", headers=me.headers).json()
    assert run["status"] == "completed" and run["provider"] == "offline"
    assert run["total_tokens"] > 0 and run["finished_at"]
    assert run["conversation_id"] == frames[0].data["conversation_id"]

    # The turn is in the new conversation's history.
    conv = api.get(f"/conversations/{run['conversation_id']}", headers=me.headers).json()
    [turn] = conv["turns"]
    assert turn["question"] == ARITHMETIC and "14" in turn["answer"]
    assert [c["tool_id"] for c in turn["tool_calls"]] == ["calculator"]


def test_the_event_log_resumes_after_last_event_id(api: ApiClient) -> None:
    me = register_and_login(api)
    live = _run(api, me, ARITHMETIC)
    run_id = live[0].data["run_id"]
    path = f"/runs/{run_id}/events"

    replay = sse_frames(api.get(path, headers=me.headers))
    assert replay == live  # the whole run, exactly as it went

    resumed = sse_frames(api.get(path, headers={**me.headers, "Last-Event-ID": "2"}))
    assert resumed == live[2:]
    assert sse_frames(api.get(path, params={"after": 2}, headers=me.headers)) == live[2:]
    end = sse_frames(api.get(path, headers={**me.headers, "Last-Event-ID": str(len(live))}))
    assert end == []  # nothing after the terminal event

    other = register_and_login(api)
    problem(api.get(path, headers=other.headers), 404, "not_found_error")
    problem(api.get(f"/runs/{run_id}", headers=other.headers), 404)
    problem(api.post(f"/runs/{run_id}/cancel", headers=other.headers), 404)
    problem(api.get(f"/runs/{uuid.uuid4()}", headers=me.headers), 404)


def test_chat_waits_for_the_answer_and_continues_the_conversation(api: ApiClient) -> None:
    me = register_and_login(api)
    first = api.post("/chat", json={"message": ARITHMETIC}, headers=me.headers)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["status"] == "completed" and "14" in answer["answer"]
    assert [c["tool_id"] for c in answer["tool_calls"]] == ["calculator"]
    assert answer["total_tokens"] > 0 and answer["error"] is None

    second = api.post(
        "/chat",
        json={"message": "what is 6*7", "conversation_id": answer["conversation_id"]},
        headers=me.headers,
    ).json()
    assert second["conversation_id"] == answer["conversation_id"] and "42" in second["answer"]
    conv = api.get(f"/conversations/{answer['conversation_id']}", headers=me.headers).json()
    assert [t["question"] for t in conv["turns"]] == [ARITHMETIC, "what is 6*7"]


def test_a_model_reached_with_the_users_key_answers_through_the_real_sdk(
    api: ApiClient,
) -> None:
    me = register_and_login(api)
    with WireServer() as wire:
        wire.script(
            Reply.sse(openai_text_stream(["Hello ", "from ", "the wire"], openai_usage(9, 4)))
        )
        api.app_services.secrets.create(
            principal(api, me),
            "openai_compatible",
            None,
            "sk-local-key",
            base_url=wire.url + "/v1",
        )
        answer = api.post(
            "/chat",
            json={"message": "hi", "provider": "openai_compatible", "model": "llama3"},
            headers=me.headers,
        ).json()
        assert wire.requests[0].headers["authorization"] == "Bearer sk-local-key"
    assert answer["status"] == "completed" and answer["answer"] == "Hello from the wire"
    assert answer["total_tokens"] == 13


def test_cancel_stops_a_running_run_and_keeps_what_it_said(api: ApiClient) -> None:
    me = register_and_login(api)
    who = principal(api, me)
    pieces = [f"word{i} " for i in range(40)]
    with WireServer() as wire:
        wire.script(Reply.sse(openai_text_stream(pieces), pause=0.1))  # ~4 s of answer
        api.app_services.secrets.create(
            who, "openai_compatible", None, "sk-local-key", base_url=wire.url + "/v1"
        )
        started = api.post(
            "/runs",
            json={"message": "tell a story", "provider": "openai_compatible", "model": "slow"},
            headers=me.headers,
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert api.get(f"/runs/{run_id}", headers=me.headers).json()["status"] == "running"

        # Follow the run; once some words are there, Stop it from another request.
        asked: float | None = None
        with api.stream("GET", f"/runs/{run_id}/events", headers=me.headers) as events:
            for line in events.iter_lines():
                if asked is None and '"text_delta"' in line:
                    asked = time.monotonic()
                    stopped = api.post(f"/runs/{run_id}/cancel", headers=me.headers)
                    assert stopped.status_code == 200
                    assert stopped.json()["cancel_requested"] is True
        assert asked is not None
        took = time.monotonic() - asked
    frames = sse_frames(api.get(f"/runs/{run_id}/events", headers=me.headers))
    assert frames[-1].type == ev.RunCancelled.type
    assert took < 2.0, took  # Stop did not wait for the answer to end
    said = "".join(f.data["text"] for f in frames if f.type == "text_delta")
    assert said.startswith("word0 ") and "word39" not in said
    run = api.get(f"/runs/{run_id}", headers=me.headers).json()
    assert run["status"] == "cancelled" and run["finished_at"]
    [turn] = api.get(f"/conversations/{run['conversation_id']}", headers=me.headers).json()["turns"]
    assert turn["status"] == "cancelled" and turn["answer"].startswith("word0")
    # Stopping a run that has ended changes nothing.
    again = api.post(f"/runs/{run_id}/cancel", headers=me.headers).json()
    assert again["status"] == "cancelled"


def test_a_message_that_is_not_valid_is_a_422_naming_the_field(api: ApiClient) -> None:
    me = register_and_login(api)
    empty = problem(api.post("/chat", json={"message": ""}, headers=me.headers), 422)
    assert [e["field"] for e in empty["errors"]] == ["body.message"]
    # Whitespace passes the schema; the service's text rule names the field.
    blank = problem(
        api.post("/orchestrator/run", json={"message": "  \n "}, headers=me.headers), 422
    )
    assert blank["code"] == "validation_error"
    assert [e["field"] for e in blank["errors"]] == ["message"]
    provider = api.post("/conversations", json={"provider": "bogus"}, headers=me.headers)
    assert problem(provider, 422)["errors"][0]["field"] == "provider"
    run = api.post("/chat", json={"message": "hi", "provider": "bogus"}, headers=me.headers)
    assert "offline" in problem(run, 422)["detail"]  # names the providers there are
    assert api.get("/conversations", headers=me.headers).json() == []  # refused: nothing left
    bad_id = problem(api.get("/runs/not-a-uuid", headers=me.headers), 422)
    assert [e["field"] for e in bad_id["errors"]] == ["path.run_id"]


def test_a_turn_over_the_budget_is_refused_before_it_starts(api: ApiClient) -> None:
    me = register_and_login(api)
    api.app_services.usage.set_user_budget(factories.OPERATOR, me.user_id, "0")
    refused = api.post("/orchestrator/run", json={"message": ARITHMETIC}, headers=me.headers)
    body = problem(refused, 429, "budget_exceeded_error")
    assert "budget" in body["detail"]
    assert api.get("/conversations", headers=me.headers).json() == []  # no empty "New chat"


def test_a_chat_waiting_for_the_database_does_not_hold_up_other_requests(
    api: ApiClient, owner_engine: Engine
) -> None:
    """``POST /chat`` is a coroutine: its admission must not run on the event loop that every
    other request (and, in the server, every page) shares."""
    me = register_and_login(api)
    locked, health_answered, released = threading.Event(), threading.Event(), threading.Event()

    def hold_the_users_admission_lock() -> None:  # as a concurrent turn does (migration 0011)
        with owner_engine.connect() as conn:
            conn.execute(
                text("select pg_advisory_xact_lock(7261007, hashtext(:u))"), {"u": str(me.user_id)}
            )
            locked.set()
            health_answered.wait(30)  # held until /health answers (30 s if it never can)
            released.set()
            conn.rollback()

    def chat_waits_for_the_lock() -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with owner_engine.connect() as conn:
                waiting = conn.scalar(
                    text(
                        "select count(*) from pg_locks where locktype = 'advisory' and not granted"
                    )
                )
            if waiting:
                return True
            time.sleep(0.05)
        return False

    holder = threading.Thread(target=hold_the_users_admission_lock)
    holder.start()
    assert locked.wait(10)
    answers: dict[str, httpx.Response] = {}

    async def main() -> bool:
        """The chat and then /health on one event loop, as the server serves them."""
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:

            async def chat() -> None:
                answers["chat"] = await client.post(
                    "/chat", json={"message": ARITHMETIC}, headers=me.headers, timeout=60
                )

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(chat)
                assert await anyio.to_thread.run_sync(chat_waits_for_the_lock)
                answers["health"] = await client.get("/health")
                answered_while_locked = not released.is_set()
                health_answered.set()
        return answered_while_locked

    try:
        answered_while_locked = run_async(main)
    finally:
        health_answered.set()
        holder.join()
    assert answers["health"].status_code == 200
    assert answered_while_locked  # not only once the chat's admission got the lock
    assert answers["chat"].json()["status"] == "completed"


def test_a_runs_trace_lists_its_model_and_tool_calls_in_order(api: ApiClient) -> None:
    me = register_and_login(api)
    frames = _run(api, me, ARITHMETIC)
    run_id = frames[0].data["run_id"]

    trace = api.get(f"/runs/{run_id}/trace", headers=me.headers).json()
    assert trace["status"] == "completed" and trace["detailed"] is True
    kinds = [s["kind"] for s in trace["steps"]]
    assert kinds[0] == "model_call" and "tool_call" in kinds and kinds[-1] == "model_call"
    first = trace["steps"][0]
    assert first["prompt"][-1] == {
        "role": "user",
        "content": ARITHMETIC,
        "tool_call_id": None,
        "tool_calls": [],
    }
    calc = next(s for s in trace["steps"] if s["kind"] == "tool_call")
    assert calc["tool_id"] == "calculator" and calc["status"] == "ok"
    assert calc["result"]["result"] == 14 and calc["duration_ms"] is not None
    assert "14" in trace["steps"][-1]["response"]
    assert trace["total_tokens"] > 0 and trace["latency_ms"] is not None

    other = register_and_login(api)
    problem(api.get(f"/runs/{run_id}/trace", headers=other.headers), 404, "not_found_error")
