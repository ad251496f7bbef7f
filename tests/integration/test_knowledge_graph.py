"""Knowledge graph on a real PostgreSQL: CRUD, search, neighbourhood, paths, import, RLS."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, event, text

from jarvis.bootstrap import Services
from jarvis.db.repositories.knowledge_graph import _like_escape
from jarvis.errors import NotFoundError, ValidationError
from jarvis.identity import Principal
from tests import factories


def chain(services: Services, p: Principal, names: str, rel: str = "next") -> dict[str, uuid.UUID]:
    """Entities A, B, C... related A->B->C... (returns name -> id)."""
    ids = {n: services.knowledge_graph.create_entity(p, n, "node").id for n in names}
    for a, b in zip(names, names[1:], strict=False):
        services.knowledge_graph.create_relation(p, ids[a], ids[b], rel)
    return ids


def names_of(hood) -> set[str]:  # type: ignore[no-untyped-def]
    return {n.name for n in hood.nodes}


def test_entity_crud_and_details(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    ada = kg.create_entity(p, "Ada Lovelace", "person", "Mathematician")
    engine = kg.create_entity(p, "Analytical Engine", "machine")
    rel = kg.create_relation(p, ada.id, engine.id, "wrote programs for", weight=0.9)
    assert rel.type == "wrote_programs_for"
    details = kg.get_entity(p, ada.id)
    assert details.entity.description == "Mathematician"
    assert (details.out_degree, details.in_degree) == (1, 0)
    assert [(r.source_name, r.type, r.target_name) for r in details.relations] == [
        ("Ada Lovelace", "wrote_programs_for", "Analytical Engine")
    ]
    updated = kg.update_entity(p, ada.id, description="First programmer")
    assert updated.description == "First programmer"
    kg.delete_relation(p, rel.id)
    assert kg.get_entity(p, ada.id).relations == []
    kg.delete_entity(p, engine.id)
    with pytest.raises(NotFoundError):
        kg.get_entity(p, engine.id)
    with pytest.raises(ValidationError):
        kg.create_entity(p, "   ")


def test_search_by_name_and_meaning(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    kg.create_entity(p, "Lisbon", "city", "Capital of Portugal on the Atlantic coast")
    kg.create_entity(p, "Lisbeth Salander", "person")
    kg.create_entity(p, "Porto", "city", "Second city of Portugal, known for port wine")
    by_name = kg.search_entities(p, "lisb", mode="name")
    assert [h.entity.name for h in by_name] == ["Lisbeth Salander", "Lisbon"] or [
        h.entity.name for h in by_name
    ] == ["Lisbon", "Lisbeth Salander"]
    assert kg.search_entities(p, "Lisbon", mode="name")[0].entity.name == "Lisbon"
    assert kg.search_entities(p, "Lisbn", mode="name")[0].entity.name == "Lisbon"  # trigram typo
    meaning = kg.search_entities(p, "port wine", mode="meaning")
    assert meaning[0].entity.name == "Porto" and meaning[0].match == "meaning"


def test_neighbourhood_depth_limits_and_cycles(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    ids = chain(services, p, "ABCDE")
    kg.create_relation(p, ids["E"], ids["A"], "next")  # a cycle A->B->C->D->E->A
    one = kg.neighbourhood(p, ids["A"], depth=1, direction="out")
    assert names_of(one) == {"A", "B"}
    two = kg.neighbourhood(p, ids["A"], depth=2, direction="out")
    assert names_of(two) == {"A", "B", "C"}
    assert {n.name: n.depth for n in two.nodes} == {"A": 0, "B": 1, "C": 2}
    assert not two.truncated
    both = kg.neighbourhood(p, ids["A"], depth=2, direction="both")
    assert names_of(both) == {"A", "B", "C", "E", "D"}  # the cycle terminates, nodes are unique
    assert len(both.nodes) == 5
    three = kg.neighbourhood(p, ids["A"], depth=3, direction="both")
    assert len(three.nodes) == 5
    # edges among the kept nodes, each once
    assert len({e.id for e in three.edges}) == len(three.edges) == 5


def test_neighbourhood_direction_and_relation_types(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    hub = kg.create_entity(p, "Hub", "x").id
    a = kg.create_entity(p, "Out1", "x").id
    b = kg.create_entity(p, "In1", "x").id
    c = kg.create_entity(p, "Friend", "x").id
    kg.create_relation(p, hub, a, "owns")
    kg.create_relation(p, b, hub, "owns")
    kg.create_relation(p, hub, c, "knows")
    assert names_of(kg.neighbourhood(p, hub, direction="out")) == {"Hub", "Out1", "Friend"}
    assert names_of(kg.neighbourhood(p, hub, direction="in")) == {"Hub", "In1"}
    assert names_of(kg.neighbourhood(p, hub, direction="both", relation_types=["knows"])) == {
        "Hub",
        "Friend",
    }
    with pytest.raises(ValidationError):
        kg.neighbourhood(p, hub, depth=4)


def test_neighbourhood_as_of_a_date(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    me = kg.create_entity(p, "Me", "person").id
    old = kg.create_entity(p, "Old Corp", "company").id
    new = kg.create_entity(p, "New Corp", "company").id
    kg.create_relation(
        p,
        me,
        old,
        "works_at",
        valid_from=datetime(2019, 1, 1, tzinfo=UTC),
        valid_to=datetime(2023, 1, 1, tzinfo=UTC),
    )
    kg.create_relation(p, me, new, "works_at", valid_from=datetime(2023, 1, 1, tzinfo=UTC))
    assert names_of(kg.neighbourhood(p, me, as_of=datetime(2021, 6, 1, tzinfo=UTC))) == {
        "Me",
        "Old Corp",
    }
    assert names_of(kg.neighbourhood(p, me, as_of=datetime(2024, 6, 1, tzinfo=UTC))) == {
        "Me",
        "New Corp",
    }
    assert names_of(kg.neighbourhood(p, me)) == {"Me", "Old Corp", "New Corp"}


def test_hub_neighbourhood_is_capped_and_flagged(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    rows = {
        "entities": [{"name": "Hub", "type": "hub"}],
        "relations": [
            {"source": "Hub", "target": f"Leaf {i:04d}", "type": "has"} for i in range(1500)
        ],
    }
    report = kg.import_data(p, json.dumps(rows), "json")
    assert report.imported and report.relations_created == 1500
    hub = kg.search_entities(p, "Hub", mode="name")[0].entity.id
    hood = kg.neighbourhood(p, hub, depth=2, node_limit=100)
    assert hood.truncated and len(hood.nodes) == 100
    assert hood.nodes[0].name == "Hub" and hood.nodes[0].depth == 0
    assert all(e.source_id == hub for e in hood.edges) and len(hood.edges) == 99
    full = kg.neighbourhood(p, hub, depth=1, node_limit=2000)
    assert not full.truncated and len(full.nodes) == 1501


def test_shortest_path_found_and_none(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    ids = chain(services, p, "ABCDEF")
    shortcut = kg.create_entity(p, "S", "node").id
    kg.create_relation(p, ids["B"], shortcut, "next")
    kg.create_relation(p, shortcut, ids["E"], "next")
    lonely = kg.create_entity(p, "Lonely", "node").id
    path = kg.shortest_path(p, ids["A"], ids["F"])
    assert path.found and [n.name for n in path.nodes] == ["A", "B", "S", "E", "F"]
    assert path.length == 4 and [e.type for e in path.edges] == ["next"] * 4
    back = kg.shortest_path(p, ids["F"], ids["A"])  # undirected by default
    assert [n.name for n in back.nodes] == ["F", "E", "S", "B", "A"]
    assert not kg.shortest_path(p, ids["F"], ids["A"], directed=True).found
    assert not kg.shortest_path(p, ids["A"], lonely).found
    assert not kg.shortest_path(p, ids["A"], ids["F"], max_depth=3).found
    assert kg.shortest_path(p, ids["A"], ids["A"]).length == 0


def test_import_rejects_bad_rows_atomically(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    bad_csv = (
        "source,target,type,weight,valid_from,valid_to\n"
        "Alice,Bob,knows,1,,\n"
        ",Bob,knows,1,,\n"  # row 2: empty source
        "Alice,Carol,likes,heavy,,\n"  # row 3: weight not a number
        "Alice,Dan,met,1,2024-05-01,2023-01-01\n"  # row 4: valid_to before valid_from
        "Alice,Eve,met,1,yesterday,\n"  # row 5: not a date
    )
    report = kg.import_data(p, bad_csv, "csv")
    assert not report.imported
    assert [r.row for r in report.rejected] == [2, 3, 4, 5]
    assert "Nothing imported" in report.summary
    assert kg.stats(p)["entities"] == 0 and kg.stats(p)["relations"] == 0
    good_csv = "source,target,type,source_type,target_type\nAlice,Bob,knows,person,person\nBob,Acme,works_at,person,company\n"
    ok = kg.import_data(p, good_csv, "csv")
    assert ok.imported and (ok.entities_created, ok.relations_created) == (3, 2)
    again = kg.import_data(
        p,
        json.dumps(
            {
                "entities": [{"name": "alice", "type": "person"}],
                "relations": [{"source": "ALICE", "target": "Zed", "type": "knows"}],
            }
        ),
        "json",
    )
    assert (again.entities_created, again.entities_existing, again.relations_created) == (1, 1, 1)
    assert kg.import_data(p, "{not json", "json").rejected[0].kind == "file"
    entities_csv = "name,type,description\nParis,city,Capital\n,city,\n"
    assert [r.row for r in kg.import_data(p, entities_csv, "csv").rejected] == [2]


def test_lookup_and_add_fact_for_the_agent(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    fact = kg.add_fact(p, "Alice", "sister of", "Bob")
    assert fact.created and fact.to_dict()["relation"] == "sister_of"
    again = kg.add_fact(p, "alice", "sister_of", "BOB")
    assert not again.created and again.relation.id == fact.relation.id
    kg.add_fact(p, "Alice", "lives in", "Lisbon")
    found = kg.lookup(p, "Alice")
    payload = json.loads(json.dumps([f.to_dict() for f in found]))
    assert payload[0]["name"] == "Alice"
    assert {(f["relation"], f["object"]) for f in payload[0]["facts"]} == {
        ("sister_of", "Bob"),
        ("lives_in", "Lisbon"),
    }
    with pytest.raises(ValidationError):
        kg.add_fact(p, "", "x", "y")


def test_row_level_security_isolates_graphs(services: Services) -> None:
    kg = services.knowledge_graph
    ann, bob = factories.user(services.uow, "ann"), factories.user(services.uow, "bob")
    ids = chain(services, ann, "XYZ")
    assert kg.search_entities(bob, "X") == []
    assert kg.lookup(bob, "X") == []
    with pytest.raises(NotFoundError):
        kg.neighbourhood(bob, ids["X"])
    with pytest.raises(NotFoundError):
        kg.shortest_path(bob, ids["X"], ids["Z"])
    with pytest.raises(NotFoundError):
        kg.get_entity(bob, ids["X"])
    with pytest.raises(NotFoundError):
        kg.delete_entity(bob, ids["X"])
    b1 = kg.create_entity(bob, "B1").id
    with pytest.raises(NotFoundError):  # cannot link to someone else's entity
        kg.create_relation(bob, b1, ids["X"], "knows")
    with services.uow(bob) as uow:  # even asking for ann's rows by her id
        assert uow.graph.count_entities(ann.user_id) == 0
        assert uow.graph.count_relations(ann.user_id) == 0
        assert uow.graph.count_entities(bob.user_id) == 1
        assert uow.graph.count_relations(bob.user_id) == 0
    assert kg.stats(ann)["relations"] == 2


def test_one_connection_serves_two_users_their_own_neighbourhoods(
    services: Services, db_connection: Connection
) -> None:
    """The capped neighbourhood's plan is kept by the connection (migration 0023) and reused
    for whoever the pool serves next: row-level security is evaluated when it runs, so the
    same plan shows each user only their own graph."""
    ann, bob = factories.user(services.uow, "ann"), factories.user(services.uow, "bob")
    ids = chain(services, ann, "PQR")
    call = text(
        "SELECT seen, nodes, edges FROM jarvis_kg_neighbourhood("
        "CAST(:root AS uuid), 3, true, true, '{}', NULL, 10, 10)"
    )
    for user, nodes, relations in [(ann, 3, 2), (bob, 0, 0)] * 6:  # past the 5th call
        db_connection.execute(
            text(
                "SELECT set_config('app.user_id', :u, true), "
                "set_config('app.user_role', 'user', true)"
            ),
            {"u": str(user.user_id)},
        )
        row = db_connection.execute(call, {"root": ids["P"]}).one()
        assert (row.seen, len(json.loads(row.nodes)), len(json.loads(row.edges))) == (
            nodes,
            nodes,
            relations,
        )


def test_the_name_search_function_answers_for_the_acting_user_only(
    services: Services, db_connection: Connection
) -> None:
    """``jarvis_kg_name_matches`` (migration 0026) runs as the owner so that it can use the
    trigram index; it must still show each user only their own entities, and nobody's to a
    transaction that names no user."""
    ann, bob = factories.user(services.uow, "ann"), factories.user(services.uow, "bob")
    for name in ("Lisbon harbour", "Lisbon", "Porto"):
        services.knowledge_graph.create_entity(ann, name, "place")
    call = text("SELECT * FROM jarvis_kg_name_matches('lisbon', '%lisbon%', 'lisbon%', 10) m(id)")
    for user, found in [(ann, 2), (bob, 0), (None, 0)] * 2:
        db_connection.execute(
            text("SELECT set_config('app.user_id', :u, true)"),
            {"u": str(user.user_id) if user else ""},
        )
        assert len(db_connection.execute(call).all()) == found
    hits = services.knowledge_graph.search_entities(ann, "lisbon", mode="name")
    names = [h.entity.name for h in hits]
    assert names == ["Lisbon", "Lisbon harbour"]  # the exact name first, then the prefix


# 0026's single ranking, the oracle for 0028's tiers: every match ranked at once.
_RANK_ALL = text(
    r"""
    SELECT e.id FROM kg_entities e
    WHERE e.name ILIKE :pattern ESCAPE '\' OR e.name % :query
    ORDER BY lower(e.name) = lower(:query) DESC, lower(e.name) LIKE :prefix ESCAPE '\' DESC,
             similarity(e.name, :query) DESC, e.name
    LIMIT :limit
    """
)


def test_the_name_search_tiers_rank_as_one_ordering_would(
    services: Services, db_connection: Connection
) -> None:
    """Migration 0028 takes the exact names, then the prefixes, then the other matches, each
    tier ranked by similarity and name, and stops once it has enough: the same ids in the
    same order as ranking every match at once (0026), for names that differ in case, share
    prefixes, contain LIKE's special characters, and for limits the first tiers fill or not."""
    rng = random.Random(16)
    ann = factories.user(services.uow, "ann")
    pieces = [
        "Ada",
        "ada",
        "ADA",
        "Adam",
        "Nevada",
        "Lisbon",
        "lisbon harbour",
        "Lisbn",
        "a%b",
        "a_b",
        "back\\slash",
        "Porto",
        "port wine",
        "Ad",
        "da",
    ]
    names = (
        pieces
        + [
            "".join(rng.choice("aAdDbn _%\\o") for _ in range(rng.randint(1, 10))).strip() or "x"
            for _ in range(140)
        ]
        + [f"{rng.choice(pieces)} {rng.choice(pieces)}" for _ in range(60)]
    )
    name_of = {services.knowledge_graph.create_entity(ann, n, "thing").id: n for n in names}
    queries = [
        "ada",
        "Ada",
        "ADA",
        "a",
        "ad",
        "d",
        "%",
        "_",
        "a_",
        "a%",
        "\\",
        "lisbon",
        "lisb",
        "Lisbn",
        "nev",
        "port",
        "zzz",
        " ",
        "a b",
    ] + [
        name[i : i + rng.randint(1, 4)]
        for name in rng.sample(names, 25)
        for i in [rng.randrange(len(name))]
    ]
    db_connection.execute(
        text("SELECT set_config('app.user_id', :u, true)"), {"u": str(ann.user_id)}
    )
    tiers = text("SELECT * FROM jarvis_kg_name_matches(:query, :pattern, :prefix, :limit) m(id)")
    compared = 0
    for query in queries:
        if not query.strip():
            continue
        params = {
            "query": query,
            "pattern": f"%{_like_escape(query)}%",
            "prefix": f"{_like_escape(query.lower())}%",
        }
        for limit in (1, 3, 10, 60, 500):
            expected = db_connection.execute(_RANK_ALL, {**params, "limit": limit}).scalars().all()
            got = db_connection.execute(tiers, {**params, "limit": limit}).scalars().all()
            # names alike rank alike, in any order: the same names in the same order
            assert [name_of[i] for i in got] == [name_of[i] for i in expected], (query, limit)
            assert len(set(got)) == len(got)
            compared += bool(expected)
    assert compared > 100  # most cases found something to rank
    hits = services.knowledge_graph.search_entities(ann, "ada", mode="name")
    assert [h.entity.name for h in hits[:3]] == ["ADA", "Ada", "ada"]  # exact names first


def test_graph_sql_is_scoped_by_row_level_security(services: Services) -> None:
    """The raw neighbourhood / path SQL runs under RLS: another user's ids lead nowhere."""

    ann, bob = factories.user(services.uow, "ann"), factories.user(services.uow, "bob")
    ids = chain(services, ann, "PQR")
    with services.uow(bob) as uow:
        repo = uow.graph
        rows = repo.neighbourhood(
            ids["P"], depth=3, direction="both", types=[], as_of=None, node_limit=10, edge_limit=10
        )
        assert rows.nodes == [] and rows.edges == []
        uncapped = repo.stream_neighbourhood(
            ids["P"], depth=3, direction="both", types=[], as_of=None
        )
        assert list(uncapped) == []
        assert (
            repo.step([ids["P"], ids["Q"]], follow_out=True, follow_in=True, types=[], as_of=None)
            == []
        )
        assert repo.search_by_name(ann.user_id, "P", 10) == []


def test_update_relation_changes_type_weight_and_validity(services: Services) -> None:
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    a, b = kg.create_entity(p, "A").id, kg.create_entity(p, "B").id
    rel = kg.create_relation(p, a, b, "knows")
    changed = kg.update_relation(
        p, rel.id, type_="works with", weight=0.5, valid_from=datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert (changed.type, changed.weight, changed.source_name) == ("works_with", 0.5, "A")
    assert names_of(kg.neighbourhood(p, a, as_of=datetime(2019, 1, 1, tzinfo=UTC))) == {"A"}
    with pytest.raises(ValidationError):
        kg.update_relation(p, rel.id, valid_to=datetime(2019, 1, 1, tzinfo=UTC))
    cleared = kg.update_relation(p, rel.id, clear_validity=True)
    assert cleared.valid_from is None and cleared.valid_to is None


def test_import_resolves_all_names_in_one_query_and_inserts_in_bulk(
    services: Services, db_connection: Connection
) -> None:
    """No query per row: one SELECT resolves every name, one INSERT per table."""
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    kg.create_entity(p, "Existing", "thing")
    rows = [{"source": "existing", "target": f"New {i}", "type": "x"} for i in range(300)]
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db_connection, "before_cursor_execute", record)
    try:
        report = kg.import_data(p, json.dumps(rows), "json")
    finally:
        event.remove(db_connection, "before_cursor_execute", record)
    assert report.imported
    assert (report.entities_created, report.entities_existing, report.relations_created) == (
        300,
        1,
        300,
    )
    data = [s for s in statements if "kg_" in s]
    assert [s.split()[0].upper() for s in data] == ["SELECT", "INSERT", "INSERT"], data
    assert kg.stats(p)["relations"] == 300


def test_paths_and_lookup_query_per_level_not_per_row(
    services: Services, db_connection: Connection
) -> None:
    """A path costs one query per BFS level plus a constant; a lookup a constant."""
    kg = services.knowledge_graph
    p = factories.user(services.uow, "ann")
    stations = [f"Station {i}" for i in range(7)]
    kg.import_data(
        p,
        json.dumps(
            [{"source": a, "target": b, "type": "next"} for a, b in zip(stations, stations[1:])]
        ),
        "json",
    )
    ids = {h.entity.name: h.entity.id for h in kg.search_entities(p, "Station", 10, mode="name")}
    statements: list[str] = []

    def record(*args: object) -> None:
        if "kg_" in str(args[2]):
            statements.append(str(args[2]))

    event.listen(db_connection, "before_cursor_execute", record)
    try:
        path = kg.shortest_path(p, ids["Station 0"], ids["Station 6"])
        path_queries = len(statements)
        statements.clear()
        found = kg.lookup(p, "Station", limit=10)
    finally:
        event.remove(db_connection, "before_cursor_execute", record)
    assert path.found and path.length == 6
    assert path_queries <= path.searched_depth + 3  # ends, one step per level, nodes, relations
    assert len(found) == 7 and all(f.facts for f in found)
    assert len(statements) <= 4  # by name, by meaning, their entities, every entity's facts


def test_export_lines_are_json_with_every_field(services: Services) -> None:
    """The export builds each JSON line in SQL from text pieces: quotes, backslashes, newlines
    and non-ASCII in names and descriptions, nested properties, a fractional weight and dates
    all come back exactly as stored (and as the streamed objects say)."""
    kg = services.knowledge_graph
    p = factories.user(services.uow, "jsonl")
    odd = 'Zoë "Q" \\ back\tslash'
    # Line breaks, which COPY's CSV would quote, are escaped in JSON text (control characters
    # are refused on the way in): every line arrives as PostgreSQL made it.
    props = {"tags": ["x", {"y": 1.5}], "n": None, "lines": "one\r\ntwo"}
    a = kg.create_entity(p, odd, "person", "line one\nline two \r\u2028", props)
    assert '"' in a.name and "\\" in a.name and "\n" in a.description  # kept as stored
    b = kg.create_entity(p, "Bob", "person")
    since = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    rel = kg.create_relation(
        p, a.id, b.id, "knows", weight=0.25, valid_from=since, properties={"how": 'said "hi"'}
    )
    chunks = list(kg.export_neighbourhood(p, a.id, depth=1))
    assert all(chunk.endswith("\n") for chunk in chunks)  # whole lines
    rows = [json.loads(line) for line in "".join(chunks).split("\n")[:-1]]  # not \u2028
    assert len(rows) == 3
    assert rows[0] == {
        "node": {
            "id": str(a.id),
            "name": a.name,
            "type": "person",
            "description": a.description,
            "depth": 0,
            "properties": props,
        }
    }
    assert rows[1]["node"]["name"] == "Bob" and rows[1]["node"]["depth"] == 1
    assert rows[2] == {
        "relation": {
            "id": str(rel.id),
            "source_id": str(a.id),
            "source": a.name,
            "type": "knows",
            "target_id": str(b.id),
            "target": "Bob",
            "weight": 0.25,
            "valid_from": since.isoformat(),
            "valid_to": None,
            "properties": {"how": 'said "hi"'},
        }
    }

    # The capped neighbourhood (rows built by PostgreSQL as arrays of fields, unpacked by
    # position) says the same, field for field.
    hood = kg.neighbourhood(p, a.id, depth=1)
    assert [n.to_dict() for n in hood.nodes] == [rows[0]["node"], rows[1]["node"]]
    assert [e.to_dict() for e in hood.edges] == [rows[2]["relation"]]
    assert hood.edges[0].valid_from == since and hood.nodes[0].id == a.id

    def export(**filters: object) -> list[str]:
        chunks = kg.export_neighbourhood(p, a.id, depth=1, **filters)
        rows = [json.loads(line) for line in "".join(chunks).split("\n")[:-1]]
        return [r["node"]["name"] if "node" in r else r["relation"]["type"] for r in rows]

    # The filters reach COPY as quoted literals (it takes no server-side parameters): a type
    # written to break out of its quotes is only a type nobody has, and an as-of date before
    # the relation began hides it.
    assert export(relation_types=["knows' OR '1'='1", "knows\\"]) == [a.name]
    assert export(relation_types=["knows"]) == [a.name, "Bob", "knows"]
    assert export(as_of=datetime(2025, 1, 1, tzinfo=UTC)) == [a.name]
    assert export(as_of=since) == [a.name, "Bob", "knows"]
