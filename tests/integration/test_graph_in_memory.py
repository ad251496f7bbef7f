"""A user's graph held in memory answers capped neighbourhoods exactly as the statement does
(and writes the same uncapped export, character for character), and only while it is
current: every write raises the user's graph version (migration 0030), and a copy read at
another version is never used."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, text

from jarvis.bootstrap import Services
from jarvis.clock import SystemClock
from jarvis.db.repositories.knowledge_graph import NeighbourhoodRows, NewEntity, NewRelation
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import NotFoundError
from jarvis.identity import Principal
from jarvis.llm.embedders import EmbedderRegistry, LexicalEmbedder
from jarvis.services.knowledge_graph import KnowledgeGraphQueries
from jarvis.services.knowledge_graph.in_memory import GraphMemory, NeighbourhoodParts
from jarvis.services.memory.embeddings import UserEmbedders
from tests import factories

TYPES = ["knows", "works_at", "likes", "part_of"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = (-30, 0, 30, 60)  # validity bounds and the dates asked for, in days from NOW


def _memory(services: Services, **kw: int) -> GraphMemory:
    return GraphMemory(
        services.uow,
        max_relations=kw.get("max_relations", 1_000_000),
        min_relations=kw.get("min_relations", 0),
        background=False,
        reload_seconds=0,
    )


def _queries(services: Services, memory: GraphMemory) -> KnowledgeGraphQueries:
    return KnowledgeGraphQueries(
        services.uow, UserEmbedders(EmbedderRegistry(LexicalEmbedder())), SystemClock(), memory
    )


def _graph(services: Services, owner: Principal, seed: int, n: int = 160) -> list[uuid.UUID]:
    return _graph_in(services.uow, owner, seed, n)


def _graph_in(uow: UnitOfWorkFactory, owner: Principal, seed: int, n: int = 160) -> list[uuid.UUID]:
    """Hubs, popular targets, self-loops, parallel relations, repeated names, properties,
    descriptions, weights and validity periods (open at either end or both)."""
    rng = random.Random(seed)
    ids = [uuid.uuid4() for _ in range(n)]
    entities = [
        NewEntity(
            owner.user_id,
            f"entity {rng.randrange(70):02d}",  # names repeat: ties go by id
            rng.choice(["person", "place", "thing"]),
            rng.choice(["", "a description", 'with "quotes" and \\ slashes']),
            rng.choice([{}, {"k": rng.randrange(9)}, {"nested": {"a": [1, 2]}}]),
            None,
            "none",
            NOW,
            id=i,
        )
        for i in ids
    ]
    relations = []
    for _ in range(n * 5):
        s = rng.choice(ids[:4]) if rng.random() < 0.3 else rng.choice(ids)
        t = rng.choice(ids[4:8]) if rng.random() < 0.3 else rng.choice(ids)
        # few distinct days, so a date asked for is often exactly a start or an end
        start = NOW + timedelta(days=rng.choice(DAYS[:3])) if rng.random() < 0.4 else None
        end = NOW + timedelta(days=rng.choice(DAYS[1:])) if rng.random() < 0.3 else None
        if start and end and end <= start:
            end = start + timedelta(days=1)
        relations.append(
            NewRelation(
                owner.user_id,
                s,
                t,
                rng.choice(TYPES),
                round(rng.uniform(0, 5), 3),
                rng.choice([{}, {"since": rng.randrange(2000, 2026)}]),
                NOW,
                valid_from=start,
                valid_to=end,
            )
        )
    with uow(owner) as w:
        w.graph.add_entities(entities)
        w.graph.add_relations(relations)
        w.commit()
    return ids


def _same(held: NeighbourhoodParts, sql: NeighbourhoodRows, cap: int) -> None:
    # the same nodes, every field, in the same order (depth, name, id)
    assert [astuple(n) for n in held.nodes] == [astuple(n) for n in sql.nodes]
    assert (held.seen > cap) == (sql.seen > cap)
    assert held.edges_truncated == sql.edges_truncated
    if sql.edges_truncated:  # which of the relations are kept is not defined; how many is
        assert len(held.edges) == len(sql.edges)
    else:
        assert sorted(map(astuple, held.edges), key=lambda e: e[0]) == sorted(
            map(astuple, sql.edges), key=lambda e: e[0]
        )


@pytest.mark.parametrize("seed", [5, 11])
def test_held_graph_answers_exactly_as_the_statement(services: Services, seed: int) -> None:
    owner = factories.user(services.uow, "held")
    ids = _graph(services, owner, seed)
    held = _memory(services).load(owner)
    assert held is not None and held.relations == len(ids) * 5
    rng = random.Random(seed)
    cases = 0
    for root in [*ids[:6], *rng.sample(ids, 6)]:  # hubs, popular targets, any
        for depth in (1, 2, 3):
            for cap in (1, 7, 40, 2000):
                direction = rng.choice(["out", "in", "both"])
                types = rng.sample(TYPES, rng.randint(1, 2)) if rng.random() < 0.3 else []
                if rng.random() < 0.1:
                    types = ["no_such_type"]
                as_of = NOW + timedelta(days=rng.choice(DAYS)) if rng.random() < 0.3 else None
                walk = {
                    "depth": depth,
                    "direction": direction,
                    "types": types,
                    "as_of": as_of,
                    "node_limit": cap,
                    "edge_limit": cap * 5 if rng.random() < 0.8 else 3,
                }
                from_memory = held.neighbourhood(root, **walk)  # type: ignore[arg-type]
                with services.uow(owner) as w:
                    from_sql = w.graph.neighbourhood(root, **walk)  # type: ignore[arg-type]
                assert from_memory is not None
                _same(from_memory, from_sql, cap)
                cases += 1
    assert cases == 12 * 3 * 4


# Values whose JSON text is easy to get wrong: escapes, non-ASCII, floats around the points where
# PostgreSQL and Python switch notation, fractions of a second, a year before 1000.
ODD_NAMES = ['say "hi"\\', "tab\tnew\nline\x01\x1f\x7f", "é ü 東京 🙂 \u2028", ""]
ODD_WEIGHTS = [
    0.0, -0.0, 1.0, -2.5, 0.1, 1 / 3, 1e14, 123456789012345.6, 1e15, 1.5e15, 9.999999e15,
    -1e15, 1e16, 1.25e17, 1e-4, 1.2e-4, 1e-5, 1e300, 5e-324, float("nan"), float("inf"),
    float("-inf"),
]  # fmt: skip
ODD_TIMES = [
    datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC),
    datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 1, 1, 12, 0, 0, 100, tzinfo=UTC),
    datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC),
    datetime(2026, 6, 30, 23, 59, 59, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]
_TIME = re.compile(r'"(-?\d{4,}-\d\d-\d\dT[^"]+)"')


def _lines(chunks: Iterator[str]) -> list[str]:
    """Every line, times as UTC instants (the database writes them in its session's zone)."""
    text = "".join(chunks)
    assert text.endswith("\n")
    return [
        _TIME.sub(
            lambda m: '"' + datetime.fromisoformat(m[1]).astimezone(UTC).isoformat() + '"', ln
        )
        for ln in text[:-1].split("\n")  # (not splitlines(): U+2028 is in a name, unescaped)
    ]


def _same_export(mine: list[str], sql: list[str]) -> None:
    """The same node lines in the same order, then the same relation lines in any order."""
    nodes = sum(ln.startswith('{"node"') for ln in sql)
    assert nodes >= 1
    assert mine[:nodes] == sql[:nodes]
    assert sorted(mine[nodes:]) == sorted(sql[nodes:])


def test_the_export_from_memory_writes_what_the_statement_writes(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The uncapped export's JSON lines, character for character: the nodes in the same order,
    the relations as the same set (times compared as instants)."""
    owner = factories.user(services.uow, "export")
    ids = _graph(services, owner, 23, n=120)
    odd = [uuid.uuid4() for _ in ODD_NAMES]
    rng = random.Random(23)
    with services.uow(owner) as w:
        w.graph.add_entities(
            [
                NewEntity(owner.user_id, name, "thing", name, {"n": name, "x": [1.5, None]},
                          None, "none", NOW, id=i)
                for name, i in zip(ODD_NAMES, odd, strict=True)
            ]
        )  # fmt: skip
        w.graph.add_relations(
            [
                NewRelation(owner.user_id, ids[0], rng.choice(odd), "odd", weight, {"w": name},
                            NOW, valid_from=rng.choice([None, *ODD_TIMES]),
                            valid_to=rng.choice([None, *ODD_TIMES[:3]]))
                for weight in ODD_WEIGHTS
                for name in ODD_NAMES[:2]
            ]
        )  # fmt: skip
        w.commit()
    held = _memory(services).load(owner)
    assert held is not None
    cases = 0
    for root in [ids[0], *odd[:2], *ids[1:4], *rng.sample(ids, 4)]:
        for depth in (1, 2, 3):
            direction = rng.choice(["out", "in", "both"])
            types = rng.sample([*TYPES, "odd"], rng.randint(1, 2)) if rng.random() < 0.3 else []
            as_of = NOW + timedelta(days=rng.choice(DAYS)) if rng.random() < 0.3 else None
            walk = {"depth": depth, "direction": direction, "types": types, "as_of": as_of}
            chunks = held.json_lines(root, chunk_bytes=2_000, **walk)  # type: ignore[arg-type]
            assert chunks is not None
            from_memory = list(chunks)
            assert all(len(c) < 4_000 and c.endswith("\n") for c in from_memory)
            with services.uow(owner) as w:
                from_sql = _lines(w.graph.stream_neighbourhood_json(root, **walk))  # type: ignore[arg-type]
            _same_export(_lines(iter(from_memory)), from_sql)
            cases += 1
    assert cases == 10 * 3
    assert held.json_lines(uuid.uuid4(), depth=1, direction="both", types=[], as_of=None) is None

    # Through the service: the held copy and the statement give the same export.
    memory = _memory(services)
    held_queries = _queries(services, memory)
    assert memory.load(owner) is not None
    walk = {"depth": 2, "relation_types": [], "as_of": None}
    _same_export(
        _lines(held_queries.export_neighbourhood(owner, ids[0], **walk)),  # type: ignore[arg-type]
        _lines(services.knowledge_graph.export_neighbourhood(owner, ids[0], **walk)),  # type: ignore[arg-type]
    )
    with pytest.raises(NotFoundError):  # not in the held copy: the statement says so
        held_queries.export_neighbourhood(owner, uuid.uuid4())
    # ...and the held copy answered the first one: without the statement it still answers
    monkeypatch.setattr(held_queries, "_json_lines", None)
    assert next(held_queries.export_neighbourhood(owner, ids[0], **walk)).startswith('{"node"')  # type: ignore[arg-type]


def test_a_write_makes_the_held_graph_stale_until_it_is_read_again(services: Services) -> None:
    owner = factories.user(services.uow, "stale")
    ids = _graph(services, owner, 3, n=40)
    memory = _memory(services)
    queries = _queries(services, memory)
    with services.uow(owner) as w:
        version = w.graph.graph_version(owner.user_id)
    assert version >= 1
    queries.neighbourhood(owner, ids[0], depth=1)  # answered by SQL; loads (in the call here)
    assert memory.current(owner.user_id, version) is not None

    # A new relation: the version moves, the held copy is not used, the answer has it.
    newcomer = services.knowledge_graph.create_entity(owner, "a newcomer")
    services.knowledge_graph.create_relation(owner, ids[0], newcomer.id, "knows")
    with services.uow(owner) as w:
        after = w.graph.graph_version(owner.user_id)
    assert after > version
    assert memory.current(owner.user_id, after) is None
    hood = queries.neighbourhood(owner, ids[0], depth=1, node_limit=2000)
    assert newcomer.id in {n.id for n in hood.nodes}
    # ...and that request read the graph again, at the new version, with the newcomer in it
    fresh = memory.current(owner.user_id, after)
    assert fresh is not None
    again = fresh.neighbourhood(
        ids[0], depth=1, direction="both", types=[], as_of=None, node_limit=2000, edge_limit=10**4
    )
    assert again is not None and newcomer.id in {n.id for n in again.nodes}

    # Renaming and deleting move it too (the rename also renames the relations' ends).
    services.knowledge_graph.update_entity(owner, newcomer.id, name="renamed")
    with services.uow(owner) as w:
        renamed = w.graph.graph_version(owner.user_id)
    assert renamed > after
    hood = queries.neighbourhood(owner, ids[0], depth=1, node_limit=2000)
    assert "renamed" in {n.name for n in hood.nodes}
    services.knowledge_graph.delete_entity(owner, newcomer.id)
    with services.uow(owner) as w:
        deleted = w.graph.graph_version(owner.user_id)
    assert deleted > renamed
    hood = queries.neighbourhood(owner, ids[0], depth=1, node_limit=2000)
    assert newcomer.id not in {n.id for n in hood.nodes}
    assert newcomer.id not in {e.target_id for e in hood.edges}


def test_the_service_answers_from_memory_and_from_sql_alike(services: Services) -> None:
    owner = factories.user(services.uow, "alike")
    ids = _graph(services, owner, 7, n=60)
    memory = _memory(services)
    held_queries = _queries(services, memory)
    plain = services.knowledge_graph  # min 20,000 relations: this graph is never held there
    assert memory.load(owner) is not None
    for root in ids[:10]:
        a = held_queries.neighbourhood(owner, root, depth=2, node_limit=25)
        b = plain.neighbourhood(owner, root, depth=2, node_limit=25)
        assert [n.id for n in a.nodes] == [n.id for n in b.nodes]
        assert a.truncated == b.truncated and a.edges_truncated == b.edges_truncated
        if b.edges_truncated:  # which relations are kept beyond the limit is not defined
            assert len(a.edges) == len(b.edges)
        else:
            assert sorted(e.id for e in a.edges) == sorted(e.id for e in b.edges)
    explored = held_queries.explore(owner, ids[0], [ids[1], ids[2]], depth=2, node_limit=30)
    expected = plain.explore(owner, ids[0], [ids[1], ids[2]], depth=2, node_limit=30)
    assert [[n.id for n in h.nodes] for h in explored] == [
        [n.id for n in h.nodes] for h in expected
    ]


def test_only_the_users_own_graph_is_held(services: Services) -> None:
    alice = factories.user(services.uow, "alice-held")
    admin = factories.user(services.uow, "admin-held", role="admin")
    alice_ids = _graph(services, alice, 1, n=30)
    admin_ids = _graph(services, admin, 2, n=20)
    memory = _memory(services)
    queries = _queries(services, memory)
    held = memory.load(admin)
    # an admin holds only their own graph
    assert held is not None and held.relations == len(admin_ids) * 5
    assert (
        held.neighbourhood(
            alice_ids[0],
            depth=1,
            direction="both",
            types=[],
            as_of=None,
            node_limit=50,
            edge_limit=250,
        )
        is None
    )
    # ...so alice's entity is the statement's to answer, as before: not the admin's to see
    with pytest.raises(NotFoundError):
        queries.neighbourhood(admin, alice_ids[0], depth=1, node_limit=50)
    with pytest.raises(NotFoundError):
        services.knowledge_graph.neighbourhood(admin, alice_ids[0], depth=1, node_limit=50)
    # alice's number is hers: no one else reads her row
    with services.uow(admin) as w:
        assert w.session.scalar(text("select count(*) from kg_graph_versions")) == 1  # own
        assert (
            w.session.scalar(
                text("select count(*) from kg_graph_versions where user_id = :u"),
                {"u": alice.user_id},
            )
            == 0
        )
    # reading a version names the user for that read only: the acting user stays
    with services.uow(alice) as w:
        assert w.graph.graph_version(admin.user_id) >= 1
        assert w.session.scalar(text("select jarvis_current_user_id()")) == alice.user_id
        owners = set(w.session.scalars(text("select user_id from kg_entities")))
    assert owners == {alice.user_id}


def test_small_graphs_are_not_held_and_the_budget_drops_the_oldest(services: Services) -> None:
    one = factories.user(services.uow, "budget-one")
    two = factories.user(services.uow, "budget-two")
    _graph(services, one, 1, n=30)  # 150 relations
    _graph(services, two, 2, n=30)
    assert _memory(services, min_relations=151).load(one) is None
    memory = _memory(services, max_relations=200)
    assert memory.load(one) is not None
    assert memory.load(two) is not None
    with services.uow(one) as w:
        version_one = w.graph.graph_version(one.user_id)
    with services.uow(two) as w:
        version_two = w.graph.graph_version(two.user_id)
    assert memory.current(one.user_id, version_one) is None  # dropped: 300 > 200
    assert memory.current(two.user_id, version_two) is not None


def test_a_bulk_import_raises_the_version_once(services: Services) -> None:
    owner = factories.user(services.uow, "bulk")
    ids = _graph(services, owner, 4, n=50)
    with services.uow(owner) as w:
        before = w.graph.graph_version(owner.user_id)
        w.graph.add_relations(
            [NewRelation(owner.user_id, ids[0], t, "knows", 1.0, {}, NOW) for t in ids]
        )
        w.commit()
    with services.uow(owner) as w:
        assert w.graph.graph_version(owner.user_id) == before + 1


def test_deleting_a_user_with_a_graph_deletes_their_version(services: Services) -> None:
    owner = factories.user(services.uow, "gone")
    admin = factories.user(services.uow, "remover", role="admin")
    _graph(services, owner, 6, n=20)
    with services.uow(owner) as w:
        assert w.graph.graph_version(owner.user_id) >= 1
    # the cascade deletes the graph, whose trigger must not write a number for a missing user
    with services.uow(admin) as w:
        gone = w.session.execute(text("delete from users where id = :u"), {"u": owner.user_id})
        assert gone.rowcount == 1
        w.commit()
    with services.uow(owner) as w:  # what that user id can still see: nothing
        left = w.session.scalar(text("select count(*) from kg_graph_versions"))
        entities = w.session.scalar(text("select count(*) from kg_entities"))
    assert (left, entities) == (0, 0)


def test_the_app_loads_the_graph_on_a_background_thread(
    app_engine: Engine, owner_engine: Engine
) -> None:
    """As in the app (its own connections, committed data): the first request is answered by
    the statement and starts a load on a thread; the next ones are answered from memory."""
    uow = UnitOfWorkFactory(app_engine)
    owner = factories.user(uow, "background")
    try:
        ids = _graph_in(uow, owner, 9, n=40)
        memory = GraphMemory(uow, max_relations=10_000, min_relations=0, reload_seconds=0)
        queries = KnowledgeGraphQueries(
            uow, UserEmbedders(EmbedderRegistry(LexicalEmbedder())), SystemClock(), memory
        )
        with uow.statements(owner) as w:
            version = w.graph.graph_version(owner.user_id)
        first = queries.neighbourhood(owner, ids[0], depth=2, node_limit=30)
        deadline = time.monotonic() + 30
        while memory.current(owner.user_id, version) is None:
            assert time.monotonic() < deadline, "the graph was not loaded in 30 s"
            time.sleep(0.05)
        again = queries.neighbourhood(owner, ids[0], depth=2, node_limit=30)
        assert [astuple(n) for n in again.nodes] == [astuple(n) for n in first.nodes]
        assert again.truncated == first.truncated
    finally:
        with owner_engine.begin() as conn:
            conn.execute(text("delete from users where id = :u"), {"u": owner.user_id})
