"""The neighbourhood query against networkx (the oracle) on random graphs with hubs, cycles,
self-loops and parallel edges: every depth, direction, relation-type filter and cap. A faster
walk can never become a wrong one."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import networkx as nx
import pytest

from jarvis.bootstrap import Services
from jarvis.db.repositories.knowledge_graph import NewEntity, NewRelation
from jarvis.identity import Principal
from jarvis.services.knowledge_graph import GraphNode, RelationView
from tests import factories

TYPES = ["knows", "works_at", "likes"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _graph(services: Services, owner: Principal, seed: int) -> tuple[nx.MultiDiGraph, dict]:
    rng = random.Random(seed)
    n = 150
    ids = [uuid.uuid4() for _ in range(n)]
    # names repeat on purpose (ties are broken by id), and do not follow the ids' order
    names = {i: f"entity {rng.randrange(60):02d}" for i in ids}
    g = nx.MultiDiGraph()
    g.add_nodes_from(ids)
    edges = []
    hubs = ids[:3]
    # popular targets: ~70 relations each, more than the neighbourhood reads from a node's
    # incoming side (0023's _CROWDED): theirs are found from the sources
    popular = ids[3:6]
    for _ in range(600):
        s = rng.choice(hubs) if rng.random() < 0.3 else rng.choice(ids)
        t = rng.choice(popular) if rng.random() < 0.35 else rng.choice(ids)
        # self-loops and parallel edges happen
        edges.append((s, t, rng.choice(TYPES)))
    with services.uow(owner) as w:
        w.graph.add_entities(
            [
                NewEntity(owner.user_id, names[i], "thing", "", {}, None, "none", NOW, id=i)
                for i in ids
            ]
        )
        w.graph.add_relations(
            [NewRelation(owner.user_id, s, t, typ, 1.0, {}, NOW) for s, t, typ in edges]
        )
        w.commit()
    for s, t, typ in edges:
        g.add_edge(s, t, type=typ)
    return g, names


def _expected(
    g: nx.MultiDiGraph, root: uuid.UUID, depth: int, direction: str, types: list[str]
) -> tuple[dict[uuid.UUID, int], list[tuple[uuid.UUID, uuid.UUID, str]]]:
    kept_edges = [
        (s, t, d["type"]) for s, t, d in g.edges(data=True) if not types or d["type"] in types
    ]
    h = nx.MultiDiGraph()
    h.add_nodes_from(g.nodes)
    h.add_edges_from((s, t) for s, t, _ in kept_edges)
    walk = {"out": h, "in": h.reverse(copy=False), "both": h.to_undirected(as_view=True)}[direction]
    dist = nx.single_source_shortest_path_length(walk, root, cutoff=depth)
    return dist, kept_edges


@pytest.mark.parametrize("seed", [3])
def test_neighbourhoods_match_networkx(services: Services, seed: int) -> None:
    owner = factories.user(services.uow, "graph")
    g, names = _graph(services, owner, seed)
    rng = random.Random(seed)
    roots = [
        *list(g.nodes)[:2],
        list(g.nodes)[3],
        *rng.sample(list(g.nodes), 2),
    ]  # hubs, popular, others
    kg = services.knowledge_graph
    cases = 0
    for root in roots:
        for depth in (1, 2, 3):
            for direction in ("out", "in", "both"):
                for types in ([], ["knows", "likes"]):
                    dist, edges = _expected(g, root, depth, direction, types)
                    ranked = sorted(dist, key=lambda n: (dist[n], names[n], str(n)))
                    # uncapped: the streaming method returns everything
                    items = list(
                        kg.stream_neighbourhood(
                            owner,
                            root,
                            depth=depth,
                            direction=direction,  # type: ignore[arg-type]
                            relation_types=types,
                        )
                    )
                    nodes = [i for i in items if isinstance(i, GraphNode)]
                    rels = [i for i in items if isinstance(i, RelationView)]
                    assert items[: len(nodes)] == nodes  # nodes first, then relations
                    assert [n.id for n in nodes] == ranked
                    assert {n.id: n.depth for n in nodes} == dist
                    among = sorted((s, t, typ) for s, t, typ in edges if s in dist and t in dist)
                    assert sorted((r.source_id, r.target_id, r.type) for r in rels) == among
                    assert all(r.source_name == names[r.source_id] for r in rels)
                    if direction == "both" and not types:  # the JSON-lines export agrees
                        export = "".join(kg.export_neighbourhood(owner, root, depth=depth))
                        lines = [json.loads(x) for x in export.split("\n")[:-1]]
                        ids = [uuid.UUID(x["node"]["id"]) for x in lines if "node" in x]
                        assert ids == ranked
                        assert (
                            sorted(
                                (
                                    uuid.UUID(x["relation"]["source_id"]),
                                    uuid.UUID(x["relation"]["target_id"]),
                                    x["relation"]["type"],
                                )
                                for x in lines
                                if "relation" in x
                            )
                            == among
                        )
                    # capped: the nearest by depth, then name; flagged when more were reachable
                    for cap in (1, 7, 40):
                        hood = kg.neighbourhood(
                            owner,
                            root,
                            depth=depth,
                            direction=direction,  # type: ignore[arg-type]
                            relation_types=types,
                            node_limit=cap,
                        )
                        kept = ranked[:cap]
                        assert [n.id for n in hood.nodes] == kept
                        assert hood.truncated == (len(dist) > cap)
                        inside = set(kept)
                        expected = sorted(
                            (s, t, typ) for s, t, typ in edges if s in inside and t in inside
                        )
                        got = sorted((e.source_id, e.target_id, e.type) for e in hood.edges)
                        assert got == expected and not hood.edges_truncated
                        cases += 1
    assert cases == len(roots) * 3 * 3 * 2 * 3


def test_over_the_cap_the_nearest_are_kept_by_name(services: Services) -> None:
    """Issue 14: the docstring said "by depth, then name" while the query kept "by depth, then
    id". A hub's neighbours whose ids sort the other way round from their names."""
    owner = factories.user(services.uow, "hub")
    hub = uuid.uuid4()
    leaves = sorted((uuid.uuid4() for _ in range(30)), reverse=True)  # ids descending ...
    with services.uow(owner) as w:
        w.graph.add_entities(
            [NewEntity(owner.user_id, "hub", "thing", "", {}, None, "none", NOW, id=hub)]
            + [
                NewEntity(
                    owner.user_id, f"leaf {i:02d}", "thing", "", {}, None, "none", NOW, id=leaf
                )
                for i, leaf in enumerate(leaves)  # ... names ascending
            ]
        )
        w.graph.add_relations(
            [NewRelation(owner.user_id, hub, leaf, "has", 1.0, {}, NOW) for leaf in leaves]
        )
        w.commit()
    hood = services.knowledge_graph.neighbourhood(owner, hub, depth=2, node_limit=6)
    assert [n.name for n in hood.nodes] == [
        "hub",
        "leaf 00",
        "leaf 01",
        "leaf 02",
        "leaf 03",
        "leaf 04",
    ]
    assert hood.truncated
    chunks = list(services.knowledge_graph.export_neighbourhood(owner, hub, depth=1))
    lines = "".join(chunks).split("\n")[:-1]
    assert len(lines) == 31 + 30 and json.loads(lines[0])["node"]["id"] == str(hub)


def test_a_large_export_arrives_in_chunks_of_whole_lines(services: Services) -> None:
    """The API's export writes each piece the service yields: one line at a time, a hub's
    export (330k lines) took over two minutes over HTTP. The lines come whole and in order, at
    least a hundred to a chunk (about 1 MB each: a thread hop per chunk over HTTP)."""
    owner = factories.user(services.uow, "exporter")
    hub = uuid.uuid4()
    leaves = [uuid.uuid4() for _ in range(2000)]
    with services.uow(owner) as w:
        w.graph.add_entities(
            [NewEntity(owner.user_id, "hub", "thing", "", {}, None, "none", NOW, id=hub)]
            + [
                NewEntity(owner.user_id, f"leaf {i:04d}", "thing", "", {}, None, "none", NOW, id=x)
                for i, x in enumerate(leaves)
            ]
        )
        w.graph.add_relations(
            [NewRelation(owner.user_id, hub, leaf, "has", 1.0, {}, NOW) for leaf in leaves]
        )
        w.commit()
    chunks = list(services.knowledge_graph.export_neighbourhood(owner, hub, depth=1))
    assert all(chunk.endswith("\n") for chunk in chunks)
    rows = [json.loads(line) for line in "".join(chunks).split("\n")[:-1]]
    assert [r["node"]["name"] for r in rows[:2001]] == ["hub"] + [
        f"leaf {i:04d}" for i in range(2000)
    ]
    assert sorted(uuid.UUID(r["relation"]["target_id"]) for r in rows[2001:]) == sorted(leaves)
    assert len(chunks) <= len(rows) // 100
    # A client that hangs up after the first chunk: the copy is cancelled with the transaction
    # and the connection serves the next export whole.
    partial = services.knowledge_graph.export_neighbourhood(owner, hub, depth=1)
    assert next(partial).endswith("\n")
    del partial  # what a streaming response does when its client goes away
    again = "".join(services.knowledge_graph.export_neighbourhood(owner, hub, depth=1))
    assert again.count("\n") == len(rows)


def test_a_renamed_entity_takes_its_new_place_among_the_nearest(services: Services) -> None:
    """The walk reads a level in name order from the relations, which carry their ends' names:
    a rename moves the entity in every neighbourhood at once, relations written after the
    rename carry the new name, and so do the relations a neighbourhood returns."""
    owner = factories.user(services.uow, "renamer")
    kg = services.knowledge_graph
    hub = kg.create_entity(owner, name="hub", type_="thing")
    leaves = [kg.create_entity(owner, name=f"leaf {i:02d}", type_="thing") for i in range(12)]
    for leaf in leaves[:6]:
        kg.create_relation(owner, source_id=hub.id, target_id=leaf.id, type_="has")
    for leaf in leaves[6:]:  # the other direction: read from the target side's index
        kg.create_relation(owner, source_id=leaf.id, target_id=hub.id, type_="part_of")

    def kept() -> list[str]:
        return [n.name for n in kg.neighbourhood(owner, hub.id, depth=1, node_limit=4).nodes]

    # a loop on the root, whose name sorts among its neighbours': one relation, counted once
    kg.create_relation(owner, source_id=hub.id, target_id=hub.id, type_="self")
    assert kept() == ["hub", "leaf 00", "leaf 01", "leaf 02"]
    kg.update_entity(owner, leaves[11].id, name="a leaf")  # last by name -> first
    kg.update_entity(owner, leaves[0].id, name="z leaf")  # first -> last
    assert kept() == ["hub", "a leaf", "leaf 01", "leaf 02"]
    late = kg.create_entity(owner, name="aa leaf", type_="thing")
    kg.create_relation(owner, source_id=hub.id, target_id=late.id, type_="has")
    assert kept() == ["hub", "a leaf", "aa leaf", "leaf 01"]
    hood = kg.neighbourhood(owner, hub.id, depth=1, node_limit=50)
    names = {n.id: n.name for n in hood.nodes}
    assert len(hood.edges) == 14
    assert all(
        (e.source_name, e.target_name) == (names[e.source_id], names[e.target_id])
        for e in hood.edges
    )
    for direction in ("in", "out"):  # the loop is found once whichever way the walk goes
        one_way = kg.neighbourhood(owner, hub.id, depth=1, node_limit=50, direction=direction)
        assert [e.type for e in one_way.edges].count("self") == 1
        assert len(one_way.edges) == len(one_way.nodes)  # each leaf's relation, and the loop
    # the service's duplicate check finds the relation under the target's new name
    assert not kg.add_fact(owner, "hub", "has", "z leaf").created
