"""What the knowledge-graph service returns to pages, tools and the CLI (plain dataclasses).

The agent's tools serialise :class:`EntityFacts` and :class:`FactView` with ``to_dict()``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypedDict

#: A JSON object (``to_dict()`` results, entity and relation properties).
JsonObject = dict[str, object]
#: Which relations a walk follows from a node: outgoing, incoming or both.
Direction = Literal["out", "in", "both"]
#: How :meth:`KnowledgeGraphService.search_entities` matches: by name, by meaning, or both.
SearchMode = Literal["name", "meaning", "both"]
#: The file formats :meth:`KnowledgeGraphService.import_data` reads.
ImportFormat = Literal["csv", "json"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True, slots=True)
class EntityView:
    id: uuid.UUID
    name: str
    type: str
    description: str = ""
    properties: JsonObject = field(default_factory=dict)
    created_at: datetime | None = None

    def to_dict(self) -> JsonObject:
        return {
            "id": str(self.id),
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "properties": self.properties,
        }


# Not frozen: a neighbourhood builds ~1,000 of these per request, and a frozen dataclass
# takes 4x as long to build (each field set through object.__setattr__). Read-only by use.
@dataclass(slots=True)
class RelationView:
    id: uuid.UUID
    source_id: uuid.UUID
    target_id: uuid.UUID
    type: str
    weight: float = 1.0
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    properties: JsonObject = field(default_factory=dict)
    source_name: str = ""
    target_name: str = ""

    def to_dict(self) -> JsonObject:
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


class GraphStats(TypedDict):
    """Counts and type lists of a user's graph (``stats["relations"]``)."""

    entities: int
    relations: int
    entity_types: list[str]
    relation_types: list[str]


@dataclass(slots=True)  # not frozen: see RelationView
class GraphNode:
    id: uuid.UUID
    name: str
    type: str
    description: str
    depth: int
    properties: JsonObject = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        return {
            "id": str(self.id),
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "depth": self.depth,
            "properties": self.properties,
        }


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
    kind: str  # "entity" | "relation" | "file"
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
            f"Imported {self.entities_created:,} new entities ({self.entities_existing:,} already "
            f"existed) and {self.relations_created:,} relations."
        )


@dataclass(frozen=True, slots=True)
class EntityFacts:
    """What ``kg_lookup`` returns per entity: the entity and its relations."""

    entity: EntityView
    score: float
    facts: list[RelationView]

    def to_dict(self) -> JsonObject:
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

    def to_dict(self) -> JsonObject:
        return {
            "subject": self.subject.name,
            "relation": self.relation.type,
            "object": self.object.name,
            "relation_id": str(self.relation.id),
            "created": self.created,
        }
