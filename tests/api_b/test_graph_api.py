"""``/graph``: entities, relations, neighbourhoods, paths and imports over HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from jarvis.api.routes.graph import NeighbourhoodOut, Node, Relation
from tests.api_b.conftest import Account, problem


def entity(client: TestClient, who: Account, name: str, **extra: object) -> str:
    response = client.post("/graph/entities", json={"name": name, **extra}, headers=who.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def relate(client: TestClient, who: Account, source: str, target: str, type_: str) -> str:
    response = client.post(
        "/graph/relations",
        json={"source_id": source, "target_id": target, "type": type_},
        headers=who.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def ada(account: Callable[[str], Account]) -> Account:
    return account("ada")


def test_entities_are_created_searched_read_changed_and_deleted(
    client: TestClient, ada: Account
) -> None:
    h = ada.headers
    made = client.post(
        "/graph/entities",
        json={"name": "Ada Lovelace", "type": "Person", "properties": {"born": 1815}},
        headers=h,
    )
    assert made.status_code == 201, made.text
    lovelace = made.json()
    assert lovelace["type"] == "person" and lovelace["properties"] == {"born": 1815}
    engine = entity(client, ada, "Analytical Engine", type="machine")

    hits = client.get("/graph/entities", params={"q": "lovelace", "mode": "name"}, headers=h)
    assert hits.status_code == 200
    assert [e["name"] for e in hits.json()] == ["Ada Lovelace"]
    assert hits.json()[0]["match"] == "name" and hits.json()[0]["score"] > 0
    machines = client.get("/graph/entities", params={"type": "machine"}, headers=h).json()
    assert [e["id"] for e in machines] == [engine] and machines[0]["score"] is None

    changed = client.patch(
        f"/graph/entities/{lovelace['id']}",
        json={"description": "First programmer"},
        headers=h,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "First programmer"
    assert changed.json()["name"] == "Ada Lovelace"  # unchanged fields stay

    relate(client, ada, lovelace["id"], engine, "Wrote programs for")
    details = client.get(f"/graph/entities/{lovelace['id']}", headers=h).json()
    assert details["out_degree"] == 1 and details["in_degree"] == 0
    [rel] = details["relations"]
    assert (rel["source"], rel["type"], rel["target"]) == (
        "Ada Lovelace",
        "wrote_programs_for",
        "Analytical Engine",
    )
    stats = client.get("/graph/stats", headers=h).json()
    assert (stats["entities"], stats["relations"]) == (2, 1)

    assert client.delete(f"/graph/entities/{engine}", headers=h).status_code == 204
    problem(client.get(f"/graph/entities/{engine}", headers=h), 404)
    # the relation went with it
    assert client.get(f"/graph/entities/{lovelace['id']}", headers=h).json()["relations"] == []


def test_relations_change_and_delete(client: TestClient, ada: Account) -> None:
    h = ada.headers
    a, b = entity(client, ada, "A"), entity(client, ada, "B")
    rel = relate(client, ada, a, b, "knows")
    changed = client.patch(
        f"/graph/relations/{rel}", json={"weight": 2.5, "type": "likes"}, headers=h
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["weight"], changed.json()["type"]) == (2.5, "likes")
    assert client.delete(f"/graph/relations/{rel}", headers=h).status_code == 204
    problem(client.delete(f"/graph/relations/{rel}", headers=h), 404)
    assert client.get(f"/graph/entities/{a}", headers=h).json()["relations"] == []


def test_neighbourhood_and_path(client: TestClient, ada: Account) -> None:
    h = ada.headers
    a, b, c, d = (entity(client, ada, n) for n in "ABCD")
    relate(client, ada, a, b, "knows")
    relate(client, ada, b, c, "knows")
    relate(client, ada, c, d, "works_with")

    near = client.get(f"/graph/entities/{a}/neighbourhood", headers=h)
    assert near.status_code == 200, near.text
    assert {n["name"] for n in near.json()["nodes"]} == {"A", "B"}
    two = client.get(f"/graph/entities/{a}/neighbourhood", params={"depth": 2}, headers=h).json()
    assert {n["name"]: n["depth"] for n in two["nodes"]} == {"A": 0, "B": 1, "C": 2}
    assert len(two["edges"]) == 2 and two["truncated"] is False
    capped = client.get(
        f"/graph/entities/{a}/neighbourhood", params={"depth": 3, "limit": 2}, headers=h
    ).json()
    assert len(capped["nodes"]) == 2 and capped["truncated"] is True
    incoming = client.get(
        f"/graph/entities/{b}/neighbourhood", params={"direction": "in"}, headers=h
    ).json()
    assert {n["name"] for n in incoming["nodes"]} == {"A", "B"}
    only_work = client.get(
        f"/graph/entities/{c}/neighbourhood", params={"relation_type": "works_with"}, headers=h
    ).json()
    assert {n["name"] for n in only_work["nodes"]} == {"C", "D"}

    path = client.get("/graph/path", params={"from": a, "to": d}, headers=h)
    assert path.status_code == 200, path.text
    assert path.json()["found"] is True and path.json()["length"] == 3
    assert [n["name"] for n in path.json()["nodes"]] == ["A", "B", "C", "D"]
    backwards = client.get(
        "/graph/path", params={"from": d, "to": a, "directed": "true"}, headers=h
    ).json()
    assert backwards["found"] is False and backwards["nodes"] == []
    short = client.get("/graph/path", params={"from": a, "to": d, "max_depth": 2}, headers=h)
    assert short.json()["found"] is False


def test_a_neighbourhood_is_the_json_its_schema_describes(client: TestClient, ada: Account) -> None:
    """The route writes the neighbourhood's JSON itself (no model per node): byte for byte
    what its documented model writes, with every field (timestamps, weights, nested
    properties, names with quotes and non-ASCII letters)."""
    h = ada.headers
    root = entity(client, ada, 'Zoë "Z" Ünal', properties={"tags": ["a", 1, None], "n": 1.5})
    other = entity(client, ada, "Ørsted", description="line\nbreak")
    made = client.post(
        "/graph/relations",
        json={
            "source_id": root,
            "target_id": other,
            "type": "knows",
            "weight": 0.25,
            "valid_from": "2024-03-31T01:30:00+02:00",
            "valid_to": "2031-01-01T00:00:00Z",
            "properties": {"since": {"year": 2024}},
        },
        headers=h,
    )
    assert made.status_code == 201, made.text
    relate(client, ada, other, root, "cites")

    response = client.get(f"/graph/entities/{root}/neighbourhood", headers=h)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    model = NeighbourhoodOut.model_validate_json(response.content)
    assert model.model_dump_json().encode() == response.content
    body = response.json()
    assert set(body) == set(NeighbourhoodOut.model_fields)
    assert [set(n) for n in body["nodes"]] == [set(Node.model_fields)] * 2
    assert [set(e) for e in body["edges"]] == [set(Relation.model_fields)] * 2
    assert body["root_id"] == root and body["depth"] == 1 and body["truncated"] is False
    assert [n["name"] for n in body["nodes"]] == ['Zoë "Z" Ünal', "Ørsted"]
    assert body["nodes"][0]["properties"] == {"tags": ["a", 1, None], "n": 1.5}
    knows = next(e for e in body["edges"] if e["type"] == "knows")
    assert knows["source"] == 'Zoë "Z" Ünal' and knows["target"] == "Ørsted"
    assert knows["weight"] == 0.25 and knows["properties"] == {"since": {"year": 2024}}
    assert knows["valid_from"] == "2024-03-30T23:30:00Z"
    assert knows["valid_to"] == "2031-01-01T00:00:00Z"
    cites = next(e for e in body["edges"] if e["type"] == "cites")
    assert cites["valid_from"] is None and cites["weight"] == 1.0


def test_a_neighbourhood_export_streams_json_lines(
    client: TestClient, ada: Account, account: Callable[[str], Account]
) -> None:
    h = ada.headers
    a, b, c, d = (entity(client, ada, n) for n in "ABCD")
    relate(client, ada, a, b, "knows")
    relate(client, ada, b, c, "knows")
    relate(client, ada, c, d, "works_with")
    url = f"/graph/entities/{a}/neighbourhood/export"
    with client.stream("GET", url, params={"depth": 2}, headers=h) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        rows = [json.loads(line) for line in response.iter_lines() if line]
    nodes = [r["node"] for r in rows if "node" in r]
    relations = [r["relation"] for r in rows if "relation" in r]
    assert [n["name"] for n in nodes] == ["A", "B", "C"]  # nearest first, no cap
    assert len(relations) == 2 and rows.index({"relation": relations[0]}) > 2  # nodes first
    # Another user's entity, or none at all: a 404 before anything is streamed.
    bob = account("bob")
    problem(client.get(url, headers=bob.headers), 404)
    problem(client.get(url, params={"depth": 9}, headers=h), 422)


def test_import_json_and_csv(client: TestClient, ada: Account) -> None:
    h = ada.headers
    doc = {
        "entities": [{"name": "Grace Hopper", "type": "person"}],
        "relations": [{"source": "Grace Hopper", "target": "COBOL", "type": "designed"}],
    }
    done = client.post(
        "/graph/import", content=json.dumps(doc), headers={**h, "Content-Type": "application/json"}
    )
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["imported"] is True
    assert (report["entities_created"], report["relations_created"]) == (2, 1)

    csv_text = "source,target,type\nCOBOL,Banks,runs in\n"
    done = client.post(
        "/graph/import", content=csv_text, headers={**h, "Content-Type": "text/csv; charset=utf-8"}
    )
    assert done.status_code == 200, done.text
    assert (done.json()["entities_created"], done.json()["entities_existing"]) == (1, 1)
    names = {e["name"] for e in client.get("/graph/entities", headers=h).json()}
    assert names == {"Grace Hopper", "COBOL", "Banks"}


def test_a_bad_import_writes_nothing_and_lists_the_rows(client: TestClient, ada: Account) -> None:
    h = {**ada.headers, "Content-Type": "text/csv"}
    csv_text = "source,target,type\nA,B,knows\n,C,knows\nD,E,\n"
    rejected = problem(client.post("/graph/import", content=csv_text, headers=h), 422)
    assert rejected["code"] == "import_rejected"
    fields = [e["field"] for e in rejected["errors"]]  # type: ignore[attr-defined]
    assert fields == ["relation 2", "relation 3"]
    assert client.get("/graph/entities", headers=ada.headers).json() == []

    not_json = client.post(
        "/graph/import",
        content="{oops",
        headers={**ada.headers, "Content-Type": "application/json"},
    )
    assert problem(not_json, 422)["errors"][0]["field"] == "file"  # type: ignore[index]
    wrong_type = client.post(
        "/graph/import", content="a,b", headers={**ada.headers, "Content-Type": "text/plain"}
    )
    problem(wrong_type, 415)


def test_another_users_graph_is_invisible(
    client: TestClient, ada: Account, account: Callable[[str], Account]
) -> None:
    bob = account("bob")
    a, b = entity(client, ada, "Ada's secret"), entity(client, ada, "Ada's other")
    rel = relate(client, ada, a, b, "knows")
    hb = bob.headers
    problem(client.get(f"/graph/entities/{a}", headers=hb), 404)
    problem(client.patch(f"/graph/entities/{a}", json={"name": "mine"}, headers=hb), 404)
    problem(client.delete(f"/graph/entities/{a}", headers=hb), 404)
    problem(client.get(f"/graph/entities/{a}/neighbourhood", headers=hb), 404)
    problem(client.get("/graph/path", params={"from": a, "to": b}, headers=hb), 404)
    problem(client.delete(f"/graph/relations/{rel}", headers=hb), 404)
    problem(client.patch(f"/graph/relations/{rel}", json={"weight": 3}, headers=hb), 404)
    # Bob cannot hang his relation on Ada's entities either
    mine = entity(client, bob, "Bob's")
    relation = {"source_id": mine, "target_id": a, "type": "knows"}
    problem(client.post("/graph/relations", json=relation, headers=hb), 404)
    assert client.get("/graph/entities", params={"q": "secret"}, headers=hb).json() == []
    assert [e["name"] for e in client.get("/graph/entities", headers=hb).json()] == ["Bob's"]
    # An import naming Ada's entity makes Bob one of his own
    csv_text = "source,target,type\nAda's secret,Bob's,knows\n"
    imported = client.post(
        "/graph/import", content=csv_text, headers={**hb, "Content-Type": "text/csv"}
    ).json()
    assert (imported["entities_created"], imported["entities_existing"]) == (1, 1)
    assert client.get("/graph/stats", headers=hb).json()["entities"] == 2
    # ... and Ada's graph is untouched
    assert client.get(f"/graph/entities/{a}", headers=ada.headers).json()["name"] == "Ada's secret"
    assert client.get("/graph/stats", headers=ada.headers).json()["relations"] == 1


def test_bad_input_is_a_422_naming_the_field(client: TestClient, ada: Account) -> None:
    h = ada.headers
    a, b = entity(client, ada, "A"), entity(client, ada, "B")
    problem(client.post("/graph/entities", json={"name": ""}, headers=h), 422, "name")
    problem(client.post("/graph/entities", json={"name": "   "}, headers=h), 422, "name")
    problem(client.post("/graph/entities", json={"name": "x\x1b[31m"}, headers=h), 422, "name")
    problem(
        client.post("/graph/entities", json={"name": "x", "properties": [1]}, headers=h),
        422,
        "properties",
    )
    problem(client.patch(f"/graph/entities/{a}", json={"type": "a\x00"}, headers=h), 422, "type")
    relation = {"source_id": a, "target_id": b, "type": "knows"}
    problem(client.post("/graph/relations", json={**relation, "type": ""}, headers=h), 422, "type")
    problem(
        client.post("/graph/relations", json={**relation, "weight": "heavy"}, headers=h),
        422,
        "weight",
    )
    backwards = {
        **relation,
        "valid_from": "2024-02-01T00:00:00Z",
        "valid_to": "2024-01-01T00:00:00Z",
    }
    problem(client.post("/graph/relations", json=backwards, headers=h), 422, "valid_to")
    problem(
        client.post("/graph/relations", json={**relation, "source_id": "x"}, headers=h),
        422,
        "source_id",
    )
    problem(
        client.get(f"/graph/entities/{a}/neighbourhood", params={"depth": 4}, headers=h),
        422,
        "depth",
    )
    problem(
        client.get(f"/graph/entities/{a}/neighbourhood", params={"direction": "up"}, headers=h),
        422,
        "direction",
    )
    problem(
        client.get(
            f"/graph/entities/{a}/neighbourhood", params={"relation_type": "a\x00"}, headers=h
        ),
        422,
        "relation_type",
    )
    problem(client.get("/graph/path", params={"from": a}, headers=h), 422, "to")
    problem(client.get("/graph/entities", params={"q": "bad\x00"}, headers=h), 422, "q")
    problem(client.get(f"/graph/entities/{uuid.uuid4()}", headers=h), 404)
    assert {e["name"] for e in client.get("/graph/entities", headers=h).json()} == {"A", "B"}
