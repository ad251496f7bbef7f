"""The read side of the knowledge graph: search, details, stats, neighbourhoods, paths, lookup.

Capped neighbourhoods come from one SQL round trip (``jarvis_kg_neighbourhood``, see the
repository), or, for a large user whose graph this process holds and whose graph version has not
moved, from memory (:mod:`.in_memory`; the same answer); capped at ``node_limit`` nodes with a
``truncated`` flag, so a hub with thousands of neighbours stays responsive. Shortest paths use a bidirectional breadth-first search
(:mod:`.paths`) that issues one query per level (never one per node), bounded by ``max_depth``.
:class:`~.service.KnowledgeGraphService` adds the writes on top of this class.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime

from jarvis.clock import Clock
from jarvis.db.repositories.knowledge_graph import EdgeRow, NodeRow, RelationWithEnds, Step
from jarvis.db.tables import KgEntity, KgRelation
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.embedders import is_zero
from jarvis.services.knowledge_graph import paths
from jarvis.services.knowledge_graph.in_memory import (
    GraphMemory,
    InMemoryGraph,
    NeighbourhoodParts,
)
from jarvis.services.knowledge_graph.validation import MAX_NAME, MAX_TYPE, clean_type
from jarvis.services.knowledge_graph.views import (
    Direction,
    EntityDetails,
    EntityFacts,
    EntityHit,
    EntityView,
    GraphNode,
    GraphStats,
    Neighbourhood,
    PathResult,
    RelationView,
    SearchMode,
)
from jarvis.services.memory.embeddings import UserEmbedders
from jarvis.validation import clamp_int, clean_line

MAX_DEPTH = 3
MAX_NODE_LIMIT = 2000
DEFAULT_NODE_LIMIT = 300
MAX_PATH_DEPTH = 8
#: Entities the explorer expands at most besides its centre (one walk each).
MAX_EXPANDED = 30
#: Relations ``kg_lookup`` returns per entity.
LOOKUP_FACTS = 20


def entity_view(e: KgEntity) -> EntityView:
    return EntityView(
        e.id, e.name, e.type, e.description or "", dict(e.properties or {}), e.created_at
    )


def relation_view(r: KgRelation, source_name: str = "", target_name: str = "") -> RelationView:
    return RelationView(
        r.id,
        r.source_id,
        r.target_id,
        r.type,
        float(r.weight),
        r.valid_from,
        r.valid_to,
        dict(r.properties or {}),
        source_name,
        target_name,
    )


def with_ends(rows: Sequence[RelationWithEnds]) -> list[RelationView]:
    return [relation_view(r, s.name, d.name) for r, s, d in rows]


def _graph_node(n: NodeRow) -> GraphNode:
    # the row's properties are its own (parsed for it): the view takes them as they are
    return GraphNode(n.id, n.name, n.type, n.description, n.depth, n.properties)


def _edge_view(e: EdgeRow) -> RelationView:
    return RelationView(
        e.id,
        e.source_id,
        e.target_id,
        e.type,
        e.weight,
        e.valid_from,
        e.valid_to,
        e.properties,
        e.source_name,
        e.target_name,
    )


def _from_memory(
    held: InMemoryGraph | None,
    root: uuid.UUID,
    depth: int,
    direction: Direction,
    types: Sequence[str],
    as_of: datetime | None,
    node_limit: int,
) -> NeighbourhoodParts | None:
    """A capped neighbourhood from the graph held in memory (current: checked by the caller);
    None when none is held or the root is not in it."""
    if held is None:
        return None
    return held.neighbourhood(
        root,
        depth=depth,
        direction=direction,
        types=types,
        as_of=as_of,
        node_limit=node_limit,
        edge_limit=node_limit * 5,
    )


def _from_statement(
    uow: UnitOfWork,
    root: uuid.UUID,
    depth: int,
    direction: Direction,
    types: Sequence[str],
    as_of: datetime | None,
    node_limit: int,
) -> NeighbourhoodParts:
    """A capped neighbourhood from the statement (one round trip)."""
    rows = uow.graph.neighbourhood(
        root,
        depth=depth,
        direction=direction,
        types=types,
        as_of=as_of,
        node_limit=node_limit,
        edge_limit=node_limit * 5,
    )
    return NeighbourhoodParts(
        [_graph_node(n) for n in rows.nodes],
        [_edge_view(e) for e in rows.edges],
        rows.seen,
        rows.edges_truncated,
    )


def _relation_types(values: Sequence[str]) -> list[str]:
    """Relation-type filters as stored (``works_at``); a type that is not clean text is a
    field error, not a driver error."""
    try:
        return [clean_type(v) for v in values][:100]
    except ValueError as exc:
        raise ValidationError(f"The {exc}.", field="relation_types") from exc


class KnowledgeGraphQueries:
    """Reading the signed-in user's knowledge graph (row-level security scopes every query)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        embedders: UserEmbedders,
        clock: Clock,
        memory: GraphMemory | None = None,
    ) -> None:
        self._uow = uow
        self._embedders = embedders
        self._clock = clock
        self._memory = memory

    def _held(self, principal: Principal) -> tuple[InMemoryGraph | None, int]:
        """The user's graph held in memory if it is current, and the version it must be at
        (-1: not read, the user's graph is not one to hold). One autocommit statement."""
        memory = self._memory
        if memory is None or not memory.worth_checking(principal.user_id):
            return None, -1
        with self._uow.statements(principal) as uow:
            version = uow.graph.graph_version(principal.user_id)
        return memory.current(principal.user_id, version), version

    def _missed(self, principal: Principal, held: InMemoryGraph | None, version: int) -> None:
        if self._memory is not None and held is None and version >= 0:
            self._memory.missed(principal, version)

    # -- entities -------------------------------------------------------------------------

    def get_entity(
        self, principal: Principal, entity_id: uuid.UUID, relation_limit: int = 200
    ) -> EntityDetails:
        """One entity with its relations (both directions) and degree."""
        with self._uow(principal) as uow:
            e = uow.graph.get_entity(entity_id)
            if e is None:
                raise NotFoundError("That entity does not exist.")
            relations = with_ends(uow.graph.relations_of(entity_id, relation_limit))
            out_n, in_n = uow.graph.degree(entity_id)
            return EntityDetails(entity_view(e), relations, out_n, in_n)

    def list_entities(
        self, principal: Principal, *, type_: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[EntityView]:
        """The user's entities by name, optionally of one type."""
        type_ = clean_line(type_, field="type", max_chars=MAX_TYPE, required=False)
        with self._uow(principal) as uow:
            rows = uow.graph.list_entities(
                principal.user_id,
                type_=type_ or None,
                limit=clamp_int(limit, 1, 1000, field="limit"),
                offset=clamp_int(offset, 0, 10**9, field="offset"),
            )
            return [entity_view(e) for e in rows]

    def search_entities(
        self, principal: Principal, query: str, limit: int = 10, *, mode: SearchMode = "both"
    ) -> list[EntityHit]:
        """Entities by name (exact > prefix > substring/trigram) and/or by meaning."""
        query = clean_line(query, field="query", label="search", max_chars=MAX_NAME, required=False)
        if not query:
            return []
        limit = clamp_int(limit, 1, 100, field="limit")
        hits: dict[uuid.UUID, EntityHit] = {}
        with self._uow(principal) as uow:
            repo = uow.graph
            if mode in ("name", "both"):
                for i, e in enumerate(repo.search_by_name(principal.user_id, query, limit)):
                    hits[e.id] = EntityHit(entity_view(e), 1.0 - i / (limit * 2), "name")
            if mode in ("meaning", "both") and len(hits) < limit:
                # The same model as the user's memories (their choice, else the default).
                embedder = self._embedders.for_user(principal, uow)
                vector = embedder.embed([query])[0]
                scored = (
                    []
                    if is_zero(vector)
                    else repo.search_by_meaning(
                        principal.user_id, embedder.model_name, vector, limit
                    )
                )
                found = {
                    e.id: e for e in repo.get_entities([i for i, _ in scored if i not in hits])
                }
                for entity_id, score in scored:
                    if entity_id in found and len(hits) < limit and score > 0:
                        hits[entity_id] = EntityHit(entity_view(found[entity_id]), score, "meaning")
        return list(hits.values())[:limit]

    def stats(self, principal: Principal) -> GraphStats:
        """Counts and the entity / relation types in use."""
        with self._uow(principal) as uow:
            return GraphStats(
                entities=uow.graph.count_entities(principal.user_id),
                relations=uow.graph.count_relations(principal.user_id),
                entity_types=uow.graph.entity_types(principal.user_id),
                relation_types=uow.graph.relation_types(principal.user_id),
            )

    def relation_types(self, principal: Principal) -> list[str]:
        """The relation types in use, sorted."""
        with self._uow(principal) as uow:
            return uow.graph.relation_types(principal.user_id)

    # -- graph queries --------------------------------------------------------------------

    def neighbourhood(
        self,
        principal: Principal,
        entity_id: uuid.UUID,
        *,
        depth: int = 1,
        direction: Direction = "both",
        relation_types: Sequence[str] = (),
        as_of: datetime | None = None,
        node_limit: int = DEFAULT_NODE_LIMIT,
    ) -> Neighbourhood:
        """Entities within ``depth`` (1–3) hops and the relations among them, in one query.

        ``truncated`` is true when more nodes were reachable than ``node_limit``; the nearest
        ones are kept (by depth, then name; the walk stops at the first level that overflows
        the cap). Uncapped: :meth:`stream_neighbourhood`.
        """
        if not 1 <= depth <= MAX_DEPTH:
            raise ValidationError(f"Depth must be between 1 and {MAX_DEPTH}.", field="depth")
        if direction not in ("out", "in", "both"):
            raise ValidationError("Direction must be out, in or both.", field="direction")
        node_limit = clamp_int(node_limit, 1, MAX_NODE_LIMIT, field="node_limit")
        types = _relation_types(relation_types)
        held, version = self._held(principal)
        walk = (entity_id, depth, direction, types, as_of, node_limit)
        rows = _from_memory(held, *walk)
        if rows is None:
            with self._uow(principal) as uow:
                rows = _from_statement(uow, *walk)
        self._missed(principal, held, version)
        if not rows.nodes:
            raise NotFoundError("That entity does not exist.")
        return Neighbourhood(
            root_id=entity_id,
            nodes=rows.nodes,
            edges=rows.edges,
            truncated=rows.seen > node_limit,
            node_limit=node_limit,
            depth=depth,
            edges_truncated=rows.edges_truncated,
        )

    def explore(
        self,
        principal: Principal,
        root_id: uuid.UUID,
        expanded: Sequence[uuid.UUID] = (),
        *,
        depth: int = 1,
        direction: Direction = "both",
        relation_types: Sequence[str] = (),
        as_of: datetime | None = None,
        node_limit: int = DEFAULT_NODE_LIMIT,
    ) -> list[Neighbourhood]:
        """What the explorer shows, in one transaction: the root's neighbourhood within
        ``depth``, then the direct neighbours (depth 1) of each expanded entity, in the order
        given, each capped at ``node_limit``. Expanded entities that no longer exist (or are
        listed twice) are skipped; a missing root raises :class:`NotFoundError`. At most
        :data:`MAX_EXPANDED` expansions are read."""
        if not 1 <= depth <= MAX_DEPTH:
            raise ValidationError(f"Depth must be between 1 and {MAX_DEPTH}.", field="depth")
        if direction not in ("out", "in", "both"):
            raise ValidationError("Direction must be out, in or both.", field="direction")
        node_limit = clamp_int(node_limit, 1, MAX_NODE_LIMIT, field="node_limit")
        types = _relation_types(relation_types)
        walks = [(root_id, depth)]
        for entity_id in dict.fromkeys(expanded):
            if entity_id != root_id and len(walks) <= MAX_EXPANDED:
                walks.append((entity_id, 1))
        hoods: list[Neighbourhood] = []
        held, version = self._held(principal)
        with self._uow(principal) as uow:  # begins a transaction only if a statement runs
            for entity_id, walk_depth in walks:
                walk = (entity_id, walk_depth, direction, types, as_of, node_limit)
                rows = _from_memory(held, *walk) or _from_statement(uow, *walk)
                if not rows.nodes:
                    if entity_id == root_id:
                        raise NotFoundError("That entity does not exist.")
                    continue
                hoods.append(
                    Neighbourhood(
                        root_id=entity_id,
                        nodes=rows.nodes,
                        edges=rows.edges,
                        truncated=rows.seen > node_limit,
                        node_limit=node_limit,
                        depth=walk_depth,
                        edges_truncated=rows.edges_truncated,
                    )
                )
        self._missed(principal, held, version)
        return hoods

    def stream_neighbourhood(
        self,
        principal: Principal,
        entity_id: uuid.UUID,
        *,
        depth: int = 1,
        direction: Direction = "both",
        relation_types: Sequence[str] = (),
        as_of: datetime | None = None,
    ) -> Iterator[GraphNode | RelationView]:
        """The whole neighbourhood, uncapped, as it is read: every node (nearest first: by
        depth, then name), then every relation among them, with both end names. For exports
        and the HTTP API: nothing is collected in memory, so a hub's 57k nodes and 200k
        relations stream in constant memory. Raises NotFoundError (before yielding anything)
        when the entity does not exist. Consume it fully or close it: it holds a transaction."""
        if not 1 <= depth <= MAX_DEPTH:
            raise ValidationError(f"Depth must be between 1 and {MAX_DEPTH}.", field="depth")
        if direction not in ("out", "in", "both"):
            raise ValidationError("Direction must be out, in or both.", field="direction")
        rows = self._stream_rows(principal, entity_id, depth, direction, relation_types, as_of)
        first = next(rows, None)
        if first is None:
            raise NotFoundError("That entity does not exist.")
        return itertools.chain([first], rows)

    def _stream_rows(
        self,
        principal: Principal,
        entity_id: uuid.UUID,
        depth: int,
        direction: Direction,
        relation_types: Sequence[str],
        as_of: datetime | None,
    ) -> Iterator[GraphNode | RelationView]:
        with self._uow(principal) as uow:
            for row in uow.graph.stream_neighbourhood(
                entity_id,
                depth=depth,
                direction=direction,
                types=list(relation_types),
                as_of=as_of,
            ):
                yield _graph_node(row) if isinstance(row, NodeRow) else _edge_view(row)

    def export_neighbourhood(
        self,
        principal: Principal,
        entity_id: uuid.UUID,
        *,
        depth: int = 1,
        direction: Direction = "both",
        relation_types: Sequence[str] = (),
        as_of: datetime | None = None,
    ) -> Iterator[str]:
        """The whole neighbourhood as JSON lines (``{"node": ...}`` then ``{"relation": ...}``),
        streamed in chunks of whole lines (about 1 MB each): for a streaming HTTP response or
        a file. Written from the user's graph held in memory when it is current (times in UTC,
        the relations in another order), else made by PostgreSQL. Raises NotFoundError (before
        yielding anything) when the entity does not exist."""
        if not 1 <= depth <= MAX_DEPTH:
            raise ValidationError(f"Depth must be between 1 and {MAX_DEPTH}.", field="depth")
        if direction not in ("out", "in", "both"):
            raise ValidationError("Direction must be out, in or both.", field="direction")
        held, version = self._held(principal)
        lines = None
        if held is not None:
            lines = held.json_lines(
                entity_id,
                depth=depth,
                direction=direction,
                types=list(relation_types),
                as_of=as_of,
            )
        self._missed(principal, held, version)
        if lines is None:
            lines = self._json_lines(principal, entity_id, depth, direction, relation_types, as_of)
        first = next(lines, None)
        if first is None:
            raise NotFoundError("That entity does not exist.")
        return itertools.chain([first], lines)

    def _json_lines(
        self,
        principal: Principal,
        entity_id: uuid.UUID,
        depth: int,
        direction: Direction,
        relation_types: Sequence[str],
        as_of: datetime | None,
    ) -> Iterator[str]:
        with self._uow(principal) as uow:
            yield from uow.graph.stream_neighbourhood_json(
                entity_id,
                depth=depth,
                direction=direction,
                types=list(relation_types),
                as_of=as_of,
            )

    def shortest_path(
        self,
        principal: Principal,
        source_id: uuid.UUID,
        target_id: uuid.UUID,
        *,
        max_depth: int = 6,
        directed: bool = False,
        relation_types: Sequence[str] = (),
        as_of: datetime | None = None,
    ) -> PathResult:
        """A shortest path (fewest relations) from source to target, or ``found=False``.

        Bidirectional breadth-first search: each level is one query over the whole frontier,
        the smaller side expands first; bounded by ``max_depth`` relations.
        """
        max_depth = clamp_int(max_depth, 1, MAX_PATH_DEPTH, field="max_depth")
        types = _relation_types(relation_types)
        with self._uow(principal) as uow:
            repo = uow.graph
            if len(repo.get_entities([source_id, target_id])) < len({source_id, target_id}):
                raise NotFoundError("Both entities must exist.")

            def expand(frontier: Sequence[uuid.UUID], forward: bool) -> list[Step]:
                # The source's side follows out-edges, the target's side in-edges (both ways
                # when undirected).
                return repo.step(
                    frontier,
                    follow_out=(not directed) or forward,
                    follow_in=(not directed) or not forward,
                    types=types,
                    as_of=as_of,
                )

            found = paths.shortest_path(source_id, target_id, expand, max_depth=max_depth)
            if not found.found:
                return PathResult(False, [], [], found.searched_depth, found.gave_up)
            entities = {e.id: e for e in repo.get_entities(found.node_ids)}
            relations = {r.id: r for r in repo.get_relations(found.relation_ids)}
            edges = [
                relation_view(r, entities[r.source_id].name, entities[r.target_id].name)
                for r in (relations[rid] for rid in found.relation_ids)
            ]
            nodes = [entity_view(entities[n]) for n in found.node_ids]
        return PathResult(True, nodes, edges, found.searched_depth)

    # -- the agent's kg_lookup ------------------------------------------------------------

    def lookup(self, principal: Principal, query: str, limit: int = 5) -> list[EntityFacts]:
        """``kg_lookup``: entities matching ``query`` (name, then meaning) with their facts."""
        hits = self.search_entities(principal, query, limit=clamp_int(limit, 1, 20, field="limit"))
        if not hits:
            return []
        with self._uow(principal) as uow:
            facts = uow.graph.relations_of_many([h.entity.id for h in hits], LOOKUP_FACTS)
            return [EntityFacts(h.entity, h.score, with_ends(facts[h.entity.id])) for h in hits]
