"""Bidirectional shortest-path search over an in-memory graph (no database)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from jarvis.services.knowledge_graph.paths import shortest_path


@dataclass(frozen=True)
class FakeStep:
    from_id: uuid.UUID
    to_id: uuid.UUID
    relation_id: uuid.UUID


class Graph:
    """Named nodes and directed edges; ``expand`` answers like the repository's ``step``."""

    def __init__(self, edges: str) -> None:
        self.ids: dict[str, uuid.UUID] = {}
        self.edges: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
        for pair in edges.split():
            a, b = pair.split(">")
            self.edges.append((self.id(a), self.id(b), uuid.uuid4()))
        self.calls: list[tuple[int, bool]] = []
        self.directed = False

    def id(self, name: str) -> uuid.UUID:
        return self.ids.setdefault(name, uuid.uuid4())

    def name(self, node: uuid.UUID) -> str:
        return next(n for n, i in self.ids.items() if i == node)

    def expand(self, frontier: Sequence[uuid.UUID], forward: bool) -> list[FakeStep]:
        self.calls.append((len(frontier), forward))
        out_ok = not self.directed or forward
        in_ok = not self.directed or not forward
        steps = []
        for s, t, r in self.edges:
            if out_ok and s in frontier:
                steps.append(FakeStep(s, t, r))
            if in_ok and t in frontier:
                steps.append(FakeStep(t, s, r))
        return steps

    def path(self, a: str, b: str, **kw: int) -> list[str] | None:
        found = shortest_path(
            self.id(a), self.id(b), self.expand, max_depth=kw.pop("depth", 6), **kw
        )
        return [self.name(n) for n in found.node_ids] if found.found else None


def test_finds_the_shortest_of_two_routes_with_its_relations() -> None:
    g = Graph("A>B B>C C>D D>E E>F B>S S>E")
    found = shortest_path(g.id("A"), g.id("F"), g.expand, max_depth=6)
    assert found.found and [g.name(n) for n in found.node_ids] == ["A", "B", "S", "E", "F"]
    by_id = {r: (g.name(s), g.name(t)) for s, t, r in g.edges}
    assert [by_id[r] for r in found.relation_ids] == [
        ("A", "B"),
        ("B", "S"),
        ("S", "E"),
        ("E", "F"),
    ]
    assert found.searched_depth == 4


def test_undirected_by_default_directed_on_request() -> None:
    g = Graph("A>B B>C")
    assert g.path("C", "A") == ["C", "B", "A"]
    g.directed = True
    assert g.path("C", "A") is None
    assert g.path("A", "C") == ["A", "B", "C"]


def test_max_depth_bounds_the_search() -> None:
    g = Graph("A>B B>C C>D")
    assert g.path("A", "D", depth=3) == ["A", "B", "C", "D"]
    assert g.path("A", "D", depth=2) is None


def test_unreachable_and_same_node() -> None:
    g = Graph("A>B C>D")
    none = shortest_path(g.id("A"), g.id("D"), g.expand, max_depth=6)
    assert not none.found and not none.gave_up and none.node_ids == []
    calls = len(g.calls)
    same = shortest_path(g.id("A"), g.id("A"), g.expand, max_depth=6)
    assert same.found and same.node_ids == [g.id("A")] and same.relation_ids == []
    assert len(g.calls) == calls  # the same node needs no query


def test_cycles_terminate() -> None:
    g = Graph("A>B B>C C>A C>D")
    assert g.path("A", "D") == ["A", "C", "D"]


def test_one_expansion_per_level_from_the_smaller_side() -> None:
    # A hub with many leaves on the source side: the target side (one node) expands first.
    leaves = " ".join(f"H>L{i}" for i in range(50))
    g = Graph(f"{leaves} L7>M M>T")
    found = shortest_path(g.id("H"), g.id("T"), g.expand, max_depth=6)
    assert found.found and [g.name(n) for n in found.node_ids] == ["H", "L7", "M", "T"]
    assert len(g.calls) == found.searched_depth == 3  # one call per level, never per node
    assert g.calls[0] == (1, True)  # both frontiers hold one node: the source side goes first
    assert g.calls[1] == (1, False)  # then the target's single node, not the 50 leaves


def test_gives_up_after_the_visit_limit() -> None:
    leaves = " ".join(f"A>L{i}" for i in range(30))
    g = Graph(f"{leaves} X>Y")
    found = shortest_path(g.id("A"), g.id("Y"), g.expand, max_depth=6, visit_limit=10)
    assert not found.found and found.gave_up
