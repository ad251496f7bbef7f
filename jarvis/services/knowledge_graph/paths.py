"""Shortest paths by bidirectional breadth-first search (pure: the edges come from a callback).

The service passes ``expand(frontier, forward)``, which returns every edge leaving the
frontier in ONE query (the repository's ``step``); this module decides which side to expand,
records parents, detects the meeting point and rebuilds the path. Each level costs one call,
never one per node, and the smaller frontier expands first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

#: Bidirectional BFS gives up after visiting this many nodes (the answer is then "none found").
PATH_VISIT_LIMIT = 200_000


class Edge(Protocol):
    """One edge leaving a frontier: ``from_id`` is on the frontier, ``to_id`` is reached."""

    @property
    def from_id(self) -> uuid.UUID: ...

    @property
    def to_id(self) -> uuid.UUID: ...

    @property
    def relation_id(self) -> uuid.UUID: ...


#: ``expand(frontier, forward)``: the edges leaving ``frontier``. ``forward`` is True on the
#: source's side (a directed search follows relations forwards there, backwards from the target).
Expand = Callable[[Sequence[uuid.UUID], bool], Sequence[Edge]]


@dataclass(frozen=True, slots=True)
class PathSteps:
    """A path as ids: ``node_ids`` from source to target, ``relation_ids`` between them."""

    found: bool
    node_ids: list[uuid.UUID]
    relation_ids: list[uuid.UUID]
    searched_depth: int
    gave_up: bool = False


# node -> (previous node on this side, the edge that reached it); None for the side's start
_Parents = dict[uuid.UUID, tuple[uuid.UUID, Edge] | None]


def shortest_path(
    source: uuid.UUID,
    target: uuid.UUID,
    expand: Expand,
    *,
    max_depth: int,
    visit_limit: int = PATH_VISIT_LIMIT,
) -> PathSteps:
    """A path with the fewest edges from ``source`` to ``target`` (at most ``max_depth``).

    Ties are broken by the node id where the two searches meet, so the answer is stable.
    ``gave_up`` is set when more than ``visit_limit`` nodes were visited without meeting.
    """
    if source == target:
        return PathSteps(True, [source], [], 0)
    fwd: _Parents = {source: None}
    bwd: _Parents = {target: None}
    depth_f = {source: 0}
    depth_b = {target: 0}
    frontier_f, frontier_b = [source], [target]
    level = 0
    while level < max_depth and frontier_f and frontier_b:
        level += 1
        forward = len(frontier_f) <= len(frontier_b)
        frontier, parents, depths, other = (
            (frontier_f, fwd, depth_f, depth_b) if forward else (frontier_b, bwd, depth_b, depth_f)
        )
        new: list[uuid.UUID] = []
        for edge in expand(frontier, forward):
            if edge.to_id not in parents:
                parents[edge.to_id] = (edge.from_id, edge)
                depths[edge.to_id] = depths[edge.from_id] + 1
                new.append(edge.to_id)
        met = [n for n in new if n in other]
        if met:
            meet = min(met, key=lambda n: (depth_f[n] + depth_b[n], str(n)))
            return _joined(source, meet, fwd, bwd, level)
        if forward:
            frontier_f = new
        else:
            frontier_b = new
        if len(fwd) + len(bwd) > visit_limit:
            return PathSteps(False, [], [], level, gave_up=True)
    return PathSteps(False, [], [], level)


def _chain(parents: _Parents, start: uuid.UUID) -> list[Edge]:
    """The edges from ``start`` back to its side's origin."""
    edges: list[Edge] = []
    link = parents[start]
    while link is not None:
        previous, edge = link
        edges.append(edge)
        link = parents[previous]
    return edges


def _joined(
    source: uuid.UUID, meet: uuid.UUID, fwd: _Parents, bwd: _Parents, level: int
) -> PathSteps:
    """source ... meet (through ``fwd``), then meet ... target (through ``bwd``)."""
    to_meet = list(reversed(_chain(fwd, meet)))
    from_meet = _chain(bwd, meet)
    nodes = [source, *(e.to_id for e in to_meet), *(e.from_id for e in from_meet)]
    relations = [e.relation_id for e in [*to_meet, *from_meet]]
    return PathSteps(True, nodes, relations, level)
