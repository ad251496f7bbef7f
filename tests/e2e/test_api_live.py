"""The HTTP API of the real one-process server (uvicorn serving ``jarvis.asgi:create_app``), through
real HTTP clients: sign-up and sign-in, a personal API key, a run streamed as SSE whose
connection is dropped and resumed with ``Last-Event-ID`` (every event once, in order), another
user's key seeing none of it, and the ``openai`` SDK against ``/v1``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from jarvis.bootstrap import Services
from jarvis.llm.offline import OFFLINE_MODEL
from tests import factories
from tests.e2e.conftest import LiveApp

pytestmark = pytest.mark.slow  # a live server in a subprocess (no browser)

PASSWORD = "a long live password"  # noqa: S105 - a throw-away database's user


def frames(lines: Any) -> Any:
    """``(id, event)`` for each SSE message of ``lines`` (an httpx line iterator)."""
    seq: int | None = None
    for line in lines:
        if line.startswith("id:"):
            seq = int(line[3:].strip())
        elif line.startswith("data:"):
            yield seq, json.loads(line[5:].strip())


def test_the_live_api_streams_resumes_and_keeps_users_apart(
    live_app: str, live_services: Services
) -> None:
    api = f"{live_app}/api/v1"
    with httpx.Client(base_url=api, timeout=30) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/ready").status_code == 200
        signed = http.post(
            "/auth/register",
            json={"email": "live@example.com", "password": PASSWORD, "display_name": "Live"},
        )
        assert signed.status_code == 201, signed.text
        access = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        assert http.get("/auth/me", headers=access).json()["email"] == "live@example.com"
        created = http.post("/api-keys", json={"name": "live"}, headers=access)
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['key']}"}

        # A run streamed as SSE; the connection dropped after two events...
        seen: list[tuple[int, dict[str, Any]]] = []
        body = {"message": "what is 12 * (3 + 4)?", "provider": "offline"}
        with http.stream("POST", "/orchestrator/run", json=body, headers=key) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for seq, event in frames(response.iter_lines()):
                seen.append((seq, event))
                if len(seen) == 2:
                    break
        run_id = seen[0][1]["run_id"]
        assert seen[0][1]["type"] == "run_started"
        # ... and resumed after the last event received: each event once, in order, to the end.
        last = str(seen[-1][0])
        with http.stream(
            "GET", f"/runs/{run_id}/events", headers={**key, "Last-Event-ID": last}
        ) as response:
            assert response.status_code == 200
            seen += list(frames(response.iter_lines()))
        with http.stream("GET", f"/runs/{run_id}/events", headers=key) as response:
            everything = list(frames(response.iter_lines()))
        assert [s for s, _ in seen] == [s for s, _ in everything]
        assert seen[-1][1]["type"] == "run_completed"
        answer = "".join(e["text"] for _, e in seen if e["type"] == "text_delta")
        assert "84" in answer
        assert http.get(f"/runs/{run_id}", headers=key).json()["status"] == "completed"

        # Another user's key reaches none of it; a wrong key is a 401 problem.
        other = factories.user(live_services.uow, "live-other")
        other_key = {"Authorization": f"Bearer {live_services.api_keys.create(other, 'k').secret}"}
        refused = http.get(f"/runs/{run_id}", headers=other_key)
        assert refused.status_code == 404
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert http.get("/conversations", headers=other_key).json() == []
        wrong = http.get("/auth/me", headers={"Authorization": "Bearer jrv_wrong"})
        assert wrong.status_code == 401 and "jrv_wrong" not in wrong.text

    # Any OpenAI client, pointed at /v1 with the personal key.
    client = openai.OpenAI(base_url=f"{live_app}/v1", api_key=created.json()["key"])
    assert f"offline/{OFFLINE_MODEL}" in [m.id for m in client.models.list()]
    done = client.chat.completions.create(
        model=f"offline/{OFFLINE_MODEL}", messages=[{"role": "user", "content": "what is 6 * 7?"}]
    )
    assert "42" in (done.choices[0].message.content or "")
    streamed = client.chat.completions.create(
        model=f"offline/{OFFLINE_MODEL}",
        messages=[{"role": "user", "content": "what is 6 * 7?"}],
        stream=True,
    )
    assert "42" in "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)


def test_the_server_answers_once_the_pages_modules_are_in(live: LiveApp) -> None:
    """Startup waits for the warm-up (pandas, plotly, the SDKs, the pages' helpers), so the
    first visitor's page does not share the CPU with it: the app says it is serving (and
    answers its health checks) only after the modules are in, and none failed."""
    log = live.log()
    assert "page modules warmed" in log and "jarvis is serving" in log, log
    assert log.index("page modules warmed") < log.index("jarvis is serving")
    assert "could not pre-import" not in log and "could not warm" not in log, log
