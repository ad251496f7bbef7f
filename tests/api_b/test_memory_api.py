"""``/memory``: store, search, browse, read and delete your memories over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api_b.conftest import Account, problem


def store(client: TestClient, who: Account, content: str, **extra: object) -> dict[str, object]:
    response = client.post("/memory", json={"content": content, **extra}, headers=who.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_stored_memory_is_found_by_search_read_and_browse(
    client: TestClient, account: Callable[[str], Account]
) -> None:
    ada = account("ada")
    tea = store(
        client, ada, "I prefer green tea in the morning", source="run:1", metadata={"tag": "drinks"}
    )
    store(client, ada, "My car is a red bicycle")
    assert tea["content"] == "I prefer green tea in the morning"
    assert tea["metadata"] == {"tag": "drinks"} and tea["source"] == "run:1"

    for mode in ("semantic", "hybrid"):
        hits = client.get(
            "/memory/search", params={"q": "green tea", "k": 1, "mode": mode}, headers=ada.headers
        )
        assert hits.status_code == 200, hits.text
        [best] = hits.json()
        assert best["id"] == tea["id"] and isinstance(best["score"], float)

    got = client.get(f"/memory/{tea['id']}", headers=ada.headers)
    assert got.status_code == 200 and got.json()["content"] == tea["content"]

    page = client.get("/memory", params={"limit": 1}, headers=ada.headers).json()
    assert [m["content"] for m in page] == ["My car is a red bicycle"]  # newest first
    second = client.get("/memory", params={"limit": 1, "offset": 1}, headers=ada.headers).json()
    assert [m["id"] for m in second] == [tea["id"]]
    found = client.get("/memory", params={"contains": "TEA"}, headers=ada.headers).json()
    assert [m["id"] for m in found] == [tea["id"]]
    by_run = client.get("/memory", params={"source": "1"}, headers=ada.headers).json()
    assert [m["id"] for m in by_run] == [tea["id"]]


def test_deleting_a_memory_removes_it(
    client: TestClient, account: Callable[[str], Account]
) -> None:
    ada = account("ada")
    memory = store(client, ada, "Forget me")
    assert client.delete(f"/memory/{memory['id']}", headers=ada.headers).status_code == 204
    problem(client.get(f"/memory/{memory['id']}", headers=ada.headers), 404)
    problem(client.delete(f"/memory/{memory['id']}", headers=ada.headers), 404)
    assert client.get("/memory", headers=ada.headers).json() == []


def test_another_users_memories_are_invisible(
    client: TestClient, account: Callable[[str], Account]
) -> None:
    ada, bob = account("ada"), account("bob")
    secret = store(client, ada, "Ada's private diary entry about tea")
    problem(client.get(f"/memory/{secret['id']}", headers=bob.headers), 404)
    problem(client.delete(f"/memory/{secret['id']}", headers=bob.headers), 404)
    assert client.get("/memory", headers=bob.headers).json() == []
    hits = client.get("/memory/search", params={"q": "diary tea"}, headers=bob.headers)
    assert hits.status_code == 200 and hits.json() == []
    # ... and it is still there for Ada
    assert client.get(f"/memory/{secret['id']}", headers=ada.headers).status_code == 200


def test_bad_input_is_a_422_naming_the_field(
    client: TestClient, account: Callable[[str], Account]
) -> None:
    ada = account("ada")
    h = ada.headers
    problem(client.post("/memory", json={"content": ""}, headers=h), 422, "content")
    problem(client.post("/memory", json={"content": "bad\x00text"}, headers=h), 422, "content")
    problem(client.post("/memory", json={"content": "   "}, headers=h), 422, "content")
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(30):
        deep = {"k": deep}
    problem(
        client.post("/memory", json={"content": "x", "metadata": deep}, headers=h), 422, "metadata"
    )
    problem(
        client.post("/memory", json={"content": "x", "metadata": [1]}, headers=h), 422, "metadata"
    )
    problem(client.get("/memory/search", params={"q": "tea", "k": 0}, headers=h), 422, "k")
    problem(
        client.get("/memory/search", params={"q": "tea", "mode": "magic"}, headers=h), 422, "mode"
    )
    problem(client.get("/memory/search", params={"q": "   "}, headers=h), 422, "q")
    problem(client.get("/memory/search", headers=h), 422, "q")
    problem(client.get("/memory", params={"limit": 0}, headers=h), 422, "limit")
    problem(client.get("/memory", params={"since": "yesterday"}, headers=h), 422, "since")
    problem(client.get("/memory/not-a-uuid", headers=h), 422, "memory_id")
    assert client.get("/memory", headers=h).json() == []  # nothing was stored


def test_memory_needs_a_signed_in_caller(client: TestClient) -> None:
    problem(client.get("/memory"), 401)
    problem(client.post("/memory", json={"content": "x"}), 401)
    problem(client.get(f"/memory/{uuid.uuid4()}", headers={"Authorization": "Bearer nope"}), 401)
