"""Knowledge graph: entities and relations, import, search, neighbourhoods and paths.

Neighbourhoods come from one SQL round trip (a recursive CTE, see the repository) and are
capped at ``node_limit`` nodes with a ``truncated`` flag, so a hub with thousands of
neighbours stays responsive. Shortest paths use a bidirectional breadth-first search that
issues one query per level (never one per node), bounded by ``max_depth``.

The agent's tools call :meth:`KnowledgeGraphService.lookup` (``kg_lookup``) and
:meth:`KnowledgeGraphService.add_fact` (``kg_add_fact``); both return objects with ``to_dict()``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from jarvis.clock import Clock
from jarvis.db.repositories.knowledge_graph import Direction, KnowledgeGraphRepository
from jarvis.db.tables import KgEntity, KgRelation
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.embedders import Embedder

MAX_NAME = 300
MAX_TYPE = 100
MAX_DEPTH = 3
MAX_NODE_LIMIT = 2000
DEFAULT_NODE_LIMIT = 300
MAX_PATH_DEPTH = 8
MAX_IMPORT_ROWS = 20_000
#: Bidirectional BFS gives up after visiting this many nodes (the answer is then "none found").
PATH_VISIT_LIMIT = 200_000
SearchMode = Literal["name", "meaning", "both"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True, slots=True)
class EntityView:
    id: uuid.UUID
    name: str
    type: str
    description: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "properties": self.properties,
        }


@dataclass(frozen=True, slots=True)
class RelationView:
    id: uuid.UUID
    source_id: uuid.UUID
    target_id: uuid.UUID
    type: str
    weight: float = 1.0
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    source_name: str = ""
    target_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "source_id": str(self.source_id),
            "source": self.source_name,
            "type": self.type,
            "target_id": str(self.target_id),
            "target": self.target_name,
            "weight": self.weight,
            "valid_from": _iso(self.valid_from),
            "valid_to": _iso(self.valid_to),
            "properties": self.properties,
        }


@dataclass(frozen=True, slots=True)
class EntityHit:
    entity: EntityView
    score: float
    match: str  # "name" | "meaning"


@dataclass(frozen=True, slots=True)
class EntityDetails:
    entity: EntityView
    relations: list[RelationView]
    out_degree: int
    in_degree: int


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: uuid.UUID
    name: str
    type: str
    description: str
    depth: int
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    root_id: uuid.UUID
    nodes: list[GraphNode]
    edges: list[RelationView]
    truncated: bool
    node_limit: int
    depth: int
    edges_truncated: bool = False

    def node(self, node_id: uuid.UUID) -> GraphNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)


@dataclass(frozen=True, slots=True)
class PathResult:
    found: bool
    nodes: list[EntityView]
    edges: list[RelationView]
    searched_depth: int
    gave_up: bool = False

    @property
    def length(self) -> int:
        return len(self.edges)


@dataclass(frozen=True, slots=True)
class RejectedRow:
    row: int  # 1-based data row (CSV: line number after the header; JSON: list index + 1)
    kind: str  # "entity" | "relation"
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: bool
    entities_created: int
    entities_existing: int
    relations_created: int
    rejected: list[RejectedRow]

    @property
    def summary(self) -> str:
        if not self.imported:
            return f"Nothing imported: {len(self.rejected)} row(s) rejected. Fix them and retry."
        return (
            f"Imported {self.entities_created} new entities ({self.entities_existing} already "
            f"existed) and {self.relations_created} relations."
        )


@dataclass(frozen=True, slots=True)
class EntityFacts:
    """What ``kg_lookup`` returns per entity: the entity and its relations."""

    entity: EntityView
    score: float
    facts: list[RelationView]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.entity.to_dict(),
            "score": round(self.score, 4),
            "facts": [
                {"subject": f.source_name, "relation": f.type, "object": f.target_name}
                for f in self.facts
            ],
        }


@dataclass(frozen=True, slots=True)
class FactView:
    """What ``kg_add_fact`` returns."""

    subject: EntityView
    relation: RelationView
    object: EntityView
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject.name,
            "relation": self.relation.type,
            "object": self.object.name,
            "relation_id": str(self.relation.id),
            "created": self.created,
        }


def _entity_view(e: KgEntity) -> EntityView:
    return EntityView(
        e.id, e.name, e.type, e.description or "", dict(e.properties or {}), e.created_at
    )


def _relation_view(r: KgRelation, source_name: str = "", target_name: str = "") -> RelationView:
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


def _parse_dt(value: Any) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _clean_name(value: Any, what: str = "name") -> str:
    name = " ".join(str(value or "").split())
    if not name:
        raise ValueError(f"{what} is empty")
    if len(name) > MAX_NAME:
        raise ValueError(f"{what} is longer than {MAX_NAME} characters")
    return name


def _clean_type(value: Any, default: str | None = None, what: str = "type") -> str:
    t = " ".join(str(value or "").split()).lower().replace(" ", "_")
    if not t:
        if default is None:
            raise ValueError(f"{what} is empty")
        return default
    if len(t) > MAX_TYPE:
        raise ValueError(f"{what} is longer than {MAX_TYPE} characters")
    return t


def _properties(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError("properties is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("properties must be a JSON object")
    return value


def _weight(value: Any) -> float:
    if value is None or value == "":
        return 1.0
    try:
        w = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"weight {value!r} is not a number") from exc
    if not math.isfinite(w):
        raise ValueError("weight must be a finite number")
    return w


class KnowledgeGraphService:
    """Entities, relations and graph queries of the signed-in user's knowledge graph."""

    def __init__(self, uow: UnitOfWorkFactory, embedder: Embedder, clock: Clock) -> None:
        self._uow = uow
        self._embedder = embedder
        self._clock = clock

    # -- entities -------------------------------------------------------------------------

    def _embed_entity(self, name: str, description: str) -> list[float]:
        return self._embedder.embed([f"{name}. {description}".strip()])[0]

    def create_entity(
        self,
        principal: Principal,
        name: str,
        type_: str = "thing",
        description: str = "",
        properties: dict[str, Any] | None = None,
    ) -> EntityView:
        """Create an entity (names are free text; the same name may exist twice)."""
        try:
            name = _clean_name(name)
            type_ = _clean_type(type_, "thing")
        except ValueError as exc:
            raise ValidationError(f"The entity {exc}.", field="name") from exc
        description = (description or "").strip()
        now = self._clock.now()
        with self._uow(principal) as uow:
            e = KnowledgeGraphRepository(uow.session).add_entity(
                user_id=principal.user_id,
                name=name,
                type=type_,
                description=description,
                properties=properties or {},
                embedding=self._embed_entity(name, description),
                embedding_model=self._embedder.model_name,
                created_at=now,
                updated_at=now,
            )
            view = _entity_view(e)
            uow.commit()
        return view

    def update_entity(
        self,
        principal: Principal,
        entity_id: uuid.UUID,
        *,
        name: str | None = None,
        type_: str | None = None,
        description: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> EntityView:
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            e = repo.get_entity(entity_id)
            if e is None:
                raise NotFoundError("That entity does not exist.")
            try:
                if name is not None:
                    e.name = _clean_name(name)
                if type_ is not None:
                    e.type = _clean_type(type_, "thing")
            except ValueError as exc:
                raise ValidationError(f"The entity {exc}.", field="name") from exc
            if description is not None:
                e.description = description.strip()
            if properties is not None:
                e.properties = properties
            e.embedding = self._embed_entity(e.name, e.description)
            e.embedding_model = self._embedder.model_name
            e.updated_at = self._clock.now()
            uow.session.flush()
            view = _entity_view(e)
            uow.commit()
        return view

    def delete_entity(self, principal: Principal, entity_id: uuid.UUID) -> None:
        """Delete an entity and (by cascade) every relation touching it."""
        with self._uow(principal) as uow:
            if not KnowledgeGraphRepository(uow.session).delete_entity(entity_id):
                raise NotFoundError("That entity does not exist.")
            uow.commit()

    def get_entity(
        self, principal: Principal, entity_id: uuid.UUID, relation_limit: int = 200
    ) -> EntityDetails:
        """One entity with its relations (both directions) and degree."""
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            e = repo.get_entity(entity_id)
            if e is None:
                raise NotFoundError("That entity does not exist.")
            rels = [
                _relation_view(r, s.name, d.name)
                for r, s, d in repo.relations_of(entity_id, relation_limit)
            ]
            out_n, in_n = repo.degree(entity_id)
            return EntityDetails(_entity_view(e), rels, out_n, in_n)

    def list_entities(
        self, principal: Principal, *, type_: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[EntityView]:
        with self._uow(principal) as uow:
            rows = KnowledgeGraphRepository(uow.session).list_entities(
                principal.user_id,
                type_=type_ or None,
                limit=max(1, min(limit, 1000)),
                offset=max(0, offset),
            )
            return [_entity_view(e) for e in rows]

    def search_entities(
        self, principal: Principal, query: str, limit: int = 10, *, mode: SearchMode = "both"
    ) -> list[EntityHit]:
        """Entities by name (exact > prefix > substring/trigram) and/or by meaning."""
        query = (query or "").strip()
        if not query:
            return []
        limit = max(1, min(limit, 100))
        hits: dict[uuid.UUID, EntityHit] = {}
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            if mode in ("name", "both"):
                for i, e in enumerate(repo.search_by_name(principal.user_id, query, limit)):
                    hits[e.id] = EntityHit(_entity_view(e), 1.0 - i / (limit * 2), "name")
            if mode in ("meaning", "both") and len(hits) < limit:
                vector = self._embedder.embed([query])[0]
                scored = repo.search_by_meaning(
                    principal.user_id, self._embedder.model_name, vector, limit
                )
                entities = {
                    e.id: e for e in repo.get_entities([i for i, _ in scored if i not in hits])
                }
                for entity_id, score in scored:
                    if entity_id in entities and len(hits) < limit and score > 0:
                        hits[entity_id] = EntityHit(
                            _entity_view(entities[entity_id]), score, "meaning"
                        )
        return list(hits.values())[:limit]

    def stats(self, principal: Principal) -> dict[str, Any]:
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            return {
                "entities": repo.count_entities(principal.user_id),
                "relations": repo.count_relations(principal.user_id),
                "entity_types": repo.entity_types(principal.user_id),
                "relation_types": repo.relation_types(principal.user_id),
            }

    def relation_types(self, principal: Principal) -> list[str]:
        with self._uow(principal) as uow:
            return KnowledgeGraphRepository(uow.session).relation_types(principal.user_id)

    # -- relations ------------------------------------------------------------------------

    def create_relation(
        self,
        principal: Principal,
        source_id: uuid.UUID,
        target_id: uuid.UUID,
        type_: str,
        *,
        weight: float = 1.0,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        properties: dict[str, Any] | None = None,
    ) -> RelationView:
        """Relate two of the user's entities (``source -[type]-> target``)."""
        try:
            type_ = _clean_type(type_, what="relation type")
            weight = _weight(weight)
        except ValueError as exc:
            raise ValidationError(f"The {exc}.", field="type") from exc
        if valid_from and valid_to and valid_to <= valid_from:
            raise ValidationError("'Valid to' must be after 'valid from'.", field="valid_to")
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            src = repo.get_entity(source_id)
            dst = repo.get_entity(target_id)
            if src is None or dst is None:
                raise NotFoundError("Both entities must exist.")
            r = repo.add_relation(
                user_id=principal.user_id,
                source_id=source_id,
                target_id=target_id,
                type=type_,
                weight=weight,
                valid_from=valid_from,
                valid_to=valid_to,
                properties=properties or {},
                created_at=self._clock.now(),
            )
            view = _relation_view(r, src.name, dst.name)
            uow.commit()
        return view

    def update_relation(
        self,
        principal: Principal,
        relation_id: uuid.UUID,
        *,
        type_: str | None = None,
        weight: float | None = None,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        clear_validity: bool = False,
    ) -> RelationView:
        """Change a relation's type, weight or validity period (``clear_validity`` empties it)."""
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            r = repo.get_relation(relation_id)
            if r is None:
                raise NotFoundError("That relation does not exist.")
            try:
                if type_ is not None:
                    r.type = _clean_type(type_, what="relation type")
                if weight is not None:
                    r.weight = _weight(weight)
            except ValueError as exc:
                raise ValidationError(f"The {exc}.", field="type") from exc
            if clear_validity:
                r.valid_from = r.valid_to = None
            if valid_from is not None:
                r.valid_from = valid_from
            if valid_to is not None:
                r.valid_to = valid_to
            if r.valid_from and r.valid_to and r.valid_to <= r.valid_from:
                raise ValidationError("'Valid to' must be after 'valid from'.", field="valid_to")
            uow.session.flush()
            ends = {e.id: e.name for e in repo.get_entities([r.source_id, r.target_id])}
            view = _relation_view(r, ends.get(r.source_id, ""), ends.get(r.target_id, ""))
            uow.commit()
        return view

    def delete_relation(self, principal: Principal, relation_id: uuid.UUID) -> None:
        with self._uow(principal) as uow:
            if not KnowledgeGraphRepository(uow.session).delete_relation(relation_id):
                raise NotFoundError("That relation does not exist.")
            uow.commit()

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
        ones are kept (by depth, then name).
        """
        if not 1 <= depth <= MAX_DEPTH:
            raise ValidationError(f"Depth must be between 1 and {MAX_DEPTH}.", field="depth")
        if direction not in ("out", "in", "both"):
            raise ValidationError("Direction must be out, in or both.", field="direction")
        node_limit = max(1, min(int(node_limit), MAX_NODE_LIMIT))
        with self._uow(principal) as uow:
            rows = KnowledgeGraphRepository(uow.session).neighbourhood(
                entity_id,
                depth=depth,
                direction=direction,
                types=list(relation_types),
                as_of=as_of,
                node_limit=node_limit,
                edge_limit=node_limit * 5,
            )
        if not rows.nodes:
            raise NotFoundError("That entity does not exist.")
        names = {n["id"]: n["name"] for n in rows.nodes}
        nodes = [
            GraphNode(
                uuid.UUID(n["id"]),
                n["name"],
                n["type"],
                n["description"] or "",
                int(n["depth"]),
                dict(n.get("properties") or {}),
            )
            for n in rows.nodes
        ]
        edges = [
            RelationView(
                uuid.UUID(e["id"]),
                uuid.UUID(e["source_id"]),
                uuid.UUID(e["target_id"]),
                e["type"],
                float(e["weight"]),
                _parse_dt(e["valid_from"]),
                _parse_dt(e["valid_to"]),
                dict(e.get("properties") or {}),
                names.get(e["source_id"], ""),
                names.get(e["target_id"], ""),
            )
            for e in rows.edges
        ]
        return Neighbourhood(
            root_id=entity_id,
            nodes=nodes,
            edges=edges,
            truncated=rows.seen > node_limit,
            node_limit=node_limit,
            depth=depth,
            edges_truncated=rows.edges_truncated,
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
        max_depth = max(1, min(int(max_depth), MAX_PATH_DEPTH))
        types = list(relation_types)
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            ends = {e.id: e for e in repo.get_entities([source_id, target_id])}
            if source_id not in ends or target_id not in ends:
                raise NotFoundError("Both entities must exist.")
            if source_id == target_id:
                return PathResult(True, [_entity_view(ends[source_id])], [], 0)
            # parent maps: node -> (previous node, step) on that side
            fwd: dict[uuid.UUID, tuple[uuid.UUID, Any] | None] = {source_id: None}
            bwd: dict[uuid.UUID, tuple[uuid.UUID, Any] | None] = {target_id: None}
            depth_f = {source_id: 0}
            depth_b = {target_id: 0}
            frontier_f, frontier_b = [source_id], [target_id]
            level = 0
            meet: uuid.UUID | None = None
            gave_up = False
            while level < max_depth and frontier_f and frontier_b:
                level += 1
                forward_side = len(frontier_f) <= len(frontier_b)
                frontier = frontier_f if forward_side else frontier_b
                parents, depths, other = (
                    (fwd, depth_f, depth_b) if forward_side else (bwd, depth_b, depth_f)
                )
                # Forward follows out-edges; backward follows in-edges (both when undirected).
                steps = repo.step(
                    frontier,
                    follow_out=(not directed) or forward_side,
                    follow_in=(not directed) or not forward_side,
                    types=types,
                    as_of=as_of,
                )
                new: list[uuid.UUID] = []
                for s in steps:
                    if s.to_id not in parents:
                        parents[s.to_id] = (s.from_id, s)
                        depths[s.to_id] = depths[s.from_id] + 1
                        new.append(s.to_id)
                candidates = [n for n in new if n in other]
                if candidates:
                    meet = min(candidates, key=lambda n: (depth_f[n] + depth_b[n], str(n)))
                    break
                if forward_side:
                    frontier_f = new
                else:
                    frontier_b = new
                if len(fwd) + len(bwd) > PATH_VISIT_LIMIT:
                    gave_up = True
                    break
            if meet is None:
                return PathResult(False, [], [], level, gave_up)
            # Rebuild: source ... meet (via fwd), meet ... target (via bwd).
            chain_f: list[Any] = []
            node = meet
            while fwd[node] is not None:
                prev, step = fwd[node]  # type: ignore[misc]
                chain_f.append(step)
                node = prev
            chain_f.reverse()
            chain_b: list[Any] = []
            node = meet
            while bwd[node] is not None:
                prev, step = bwd[node]  # type: ignore[misc]
                chain_b.append(step)
                node = prev
            order = [source_id]
            for step in chain_f:
                order.append(step.to_id)
            for step in chain_b:
                order.append(step.from_id)
            entities = {e.id: e for e in repo.get_entities(order)}
            rel_ids = [s.relation_id for s in chain_f + chain_b]
            relations = {}
            for rid in rel_ids:
                r = repo.get_relation(rid)
                if r is not None:
                    relations[rid] = r
            edges = [
                _relation_view(
                    relations[rid],
                    entities[relations[rid].source_id].name,
                    entities[relations[rid].target_id].name,
                )
                for rid in rel_ids
            ]
            return PathResult(True, [_entity_view(entities[n]) for n in order], edges, level)

    # -- agent tools ----------------------------------------------------------------------

    def lookup(self, principal: Principal, query: str, limit: int = 5) -> list[EntityFacts]:
        """``kg_lookup``: entities matching ``query`` (name, then meaning) with their facts."""
        hits = self.search_entities(principal, query, limit=max(1, min(limit, 20)))
        out: list[EntityFacts] = []
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            for hit in hits:
                rels = [
                    _relation_view(r, s.name, d.name)
                    for r, s, d in repo.relations_of(hit.entity.id, 20)
                ]
                out.append(EntityFacts(hit.entity, hit.score, rels))
        return out

    def add_fact(self, principal: Principal, subject: str, relation: str, object_: str) -> FactView:
        """``kg_add_fact``: ``subject -[relation]-> object``; entities are found by name
        (case-insensitive) or created; an identical current fact is not duplicated."""
        try:
            subject_name = _clean_name(subject, "subject")
            object_name = _clean_name(object_, "object")
            rel_type = _clean_type(relation, what="relation")
        except ValueError as exc:
            raise ValidationError(f"The {exc}.", field="fact") from exc
        now = self._clock.now()
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            existing = repo.by_names(principal.user_id, [subject_name, object_name])
            ends: dict[str, KgEntity] = {}
            for name in (subject_name, object_name):
                e = existing.get(name.lower()) or ends.get(name.lower())
                if e is None:
                    e = repo.add_entity(
                        user_id=principal.user_id,
                        name=name,
                        type="thing",
                        description="",
                        properties={},
                        embedding=self._embed_entity(name, ""),
                        embedding_model=self._embedder.model_name,
                        created_at=now,
                        updated_at=now,
                    )
                ends[name.lower()] = e
            s, o = ends[subject_name.lower()], ends[object_name.lower()]
            r = repo.find_relation(s.id, o.id, rel_type)
            created = r is None
            if r is None:
                r = repo.add_relation(
                    user_id=principal.user_id,
                    source_id=s.id,
                    target_id=o.id,
                    type=rel_type,
                    weight=1.0,
                    properties={},
                    created_at=now,
                )
            fact = FactView(
                _entity_view(s), _relation_view(r, s.name, o.name), _entity_view(o), created
            )
            uow.commit()
        return fact

    # -- import ---------------------------------------------------------------------------

    def import_data(
        self, principal: Principal, data: str | bytes, fmt: Literal["csv", "json"]
    ) -> ImportReport:
        """Import entities and relations from CSV or JSON: all rows or none.

        JSON: ``{"entities": [{name, type, description, properties}], "relations": [{source,
        target, type, weight, valid_from, valid_to, properties}]}`` (or just a list of relations).
        CSV: a header with ``name`` (entities) or ``source,target,type`` (relations; also
        ``source_type``, ``target_type``, ``weight``, ``valid_from``, ``valid_to``).
        Relations refer to entities by name: the import's own, the user's existing ones
        (case-insensitive), or new ones created with the given (or ``thing``) type.
        """
        text_data = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        entity_rows, relation_rows, rejected = _parse_import(text_data, fmt)
        if not rejected and len(entity_rows) + len(relation_rows) > MAX_IMPORT_ROWS:
            rejected.append(RejectedRow(0, "file", f"more than {MAX_IMPORT_ROWS} rows"))
        if not rejected and not entity_rows and not relation_rows:
            rejected.append(RejectedRow(0, "file", "no rows found"))
        entities: dict[str, dict[str, Any]] = {}
        for line, row in entity_rows:
            key = row["name"].lower()
            if key in entities and entities[key]["type"] != row["type"]:
                rejected.append(
                    RejectedRow(
                        line, "entity", f"{row['name']!r} appears twice with different types"
                    )
                )
            entities.setdefault(key, row)
        if rejected:
            return ImportReport(False, 0, 0, 0, rejected)
        for _, rel in relation_rows:
            for end, end_type in (("source", "source_type"), ("target", "target_type")):
                entities.setdefault(
                    rel[end].lower(),
                    {
                        "name": rel[end],
                        "type": rel[end_type] or "thing",
                        "description": "",
                        "properties": {},
                    },
                )
        now = self._clock.now()
        with self._uow(principal) as uow:
            repo = KnowledgeGraphRepository(uow.session)
            existing = repo.by_names(principal.user_id, [e["name"] for e in entities.values()])
            ids = {key: e.id for key, e in existing.items()}
            new_rows = []
            new_keys = [key for key in entities if key not in ids]
            vectors = (
                self._embedder.embed(
                    [
                        f"{entities[k]['name']}. {entities[k]['description']}".strip()
                        for k in new_keys
                    ]
                )
                if new_keys
                else []
            )
            for key, vector in zip(new_keys, vectors, strict=True):
                e = entities[key]
                ids[key] = uuid.uuid4()
                new_rows.append(
                    {
                        "id": ids[key],
                        "user_id": principal.user_id,
                        "name": e["name"],
                        "type": e["type"],
                        "description": e["description"],
                        "properties": e["properties"],
                        "embedding": vector,
                        "embedding_model": self._embedder.model_name,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            repo.add_entities(new_rows)
            repo.add_relations(
                [
                    {
                        "id": uuid.uuid4(),
                        "user_id": principal.user_id,
                        "source_id": ids[rel["source"].lower()],
                        "target_id": ids[rel["target"].lower()],
                        "type": rel["type"],
                        "weight": rel["weight"],
                        "valid_from": rel["valid_from"],
                        "valid_to": rel["valid_to"],
                        "properties": rel["properties"],
                        "created_at": now,
                    }
                    for _, rel in relation_rows
                ]
            )
            uow.commit()
        return ImportReport(
            True, len(new_rows), len(entities) - len(new_rows), len(relation_rows), []
        )


def _parse_import(
    text_data: str, fmt: str
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, dict[str, Any]]], list[RejectedRow]]:
    entity_rows: list[tuple[int, dict[str, Any]]] = []
    relation_rows: list[tuple[int, dict[str, Any]]] = []
    rejected: list[RejectedRow] = []
    raw_entities: list[tuple[int, Any]] = []
    raw_relations: list[tuple[int, Any]] = []
    if fmt == "json":
        try:
            doc = json.loads(text_data)
        except json.JSONDecodeError as exc:
            return [], [], [RejectedRow(0, "file", f"not valid JSON (line {exc.lineno})")]
        if isinstance(doc, list):
            doc = {"relations": doc}
        if not isinstance(doc, dict):
            return (
                [],
                [],
                [RejectedRow(0, "file", "expected an object with 'entities' and 'relations'")],
            )
        for key, target in (("entities", raw_entities), ("relations", raw_relations)):
            items = doc.get(key) or []
            if not isinstance(items, list):
                return [], [], [RejectedRow(0, "file", f"'{key}' must be a list")]
            target.extend((i + 1, item) for i, item in enumerate(items))
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text_data))
        header = {(h or "").strip().lower() for h in (reader.fieldnames or [])}
        is_relations = {"source", "target"} <= header
        if not is_relations and "name" not in header:
            return (
                [],
                [],
                [
                    RejectedRow(
                        0,
                        "file",
                        "the header needs 'name' (entities) or 'source,target,type' (relations)",
                    )
                ],
            )
        for i, raw in enumerate(reader, start=1):
            if None in raw:
                rejected.append(
                    RejectedRow(i, "relation" if is_relations else "entity", "too many columns")
                )
                continue
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            (raw_relations if is_relations else raw_entities).append((i, row))
    else:
        return [], [], [RejectedRow(0, "file", f"unknown format {fmt!r}")]

    for line, item in raw_entities:
        if not isinstance(item, dict):
            rejected.append(RejectedRow(line, "entity", "not an object"))
            continue
        try:
            entity_rows.append(
                (
                    line,
                    {
                        "name": _clean_name(item.get("name")),
                        "type": _clean_type(item.get("type"), "thing"),
                        "description": str(item.get("description") or "").strip(),
                        "properties": _properties(item.get("properties")),
                    },
                )
            )
        except ValueError as exc:
            rejected.append(RejectedRow(line, "entity", str(exc)))
    for line, item in raw_relations:
        if not isinstance(item, dict):
            rejected.append(RejectedRow(line, "relation", "not an object"))
            continue
        try:
            valid_from = _parse_dt(item.get("valid_from"))
            valid_to = _parse_dt(item.get("valid_to"))
            if valid_from and valid_to and valid_to <= valid_from:
                raise ValueError("valid_to is not after valid_from")
            relation_rows.append(
                (
                    line,
                    {
                        "source": _clean_name(item.get("source"), "source"),
                        "target": _clean_name(item.get("target"), "target"),
                        "type": _clean_type(
                            item.get("type") or item.get("relation"), what="relation type"
                        ),
                        "source_type": _clean_type(item.get("source_type"), "thing"),
                        "target_type": _clean_type(item.get("target_type"), "thing"),
                        "weight": _weight(item.get("weight")),
                        "valid_from": valid_from,
                        "valid_to": valid_to,
                        "properties": _properties(item.get("properties")),
                    },
                )
            )
        except ValueError as exc:
            rejected.append(RejectedRow(line, "relation", str(exc)))
    return entity_rows, relation_rows, rejected
