"""Your knowledge graph: entities, relations, neighbourhoods, shortest paths and imports.

Everything is scoped to the caller (row-level security): another user's entity or relation is
404, exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints
from pydantic_core import to_json

from jarvis.api.deps import CurrentUser, ServicesDep
from jarvis.api.fields import fields_named
from jarvis.api.problems import PROBLEM_RESPONSES, FieldProblem, problem_doc, problem_response
from jarvis.services.knowledge_graph import (
    DEFAULT_NODE_LIMIT,
    MAX_DEPTH,
    MAX_NAME,
    MAX_NODE_LIMIT,
    MAX_PATH_DEPTH,
    MAX_TYPE,
    Direction,
    EntityDetails,
    EntityHit,
    EntityView,
    GraphStats,
    ImportReport,
    Neighbourhood,
    PathResult,
    RelationView,
    SearchMode,
)
from jarvis.services.knowledge_graph.validation import MAX_DESCRIPTION

NDJSON = "application/x-ndjson"

router = APIRouter(prefix="/graph", tags=["knowledge graph"], responses=PROBLEM_RESPONSES)

#: Field problems listed in an import's 422 (the detail says how many rows were rejected).
MAX_IMPORT_PROBLEMS = 100

Properties = dict[str, Any]
RelationTypes = Annotated[
    list[Annotated[str, StringConstraints(max_length=MAX_TYPE)]] | None,
    Query(
        alias="relation_type",
        max_length=100,
        description="Follow only these relation types (repeat the parameter for several).",
    ),
]
AsOf = Annotated[
    datetime | None, Query(description="Only relations valid at this time (default: all).")
]


# -- models ------------------------------------------------------------------------------------


class Entity(BaseModel):
    id: uuid.UUID
    name: str
    type: str
    description: str
    properties: Properties
    created_at: datetime | None

    @classmethod
    def of(cls, e: EntityView) -> Entity:
        return cls(
            id=e.id,
            name=e.name,
            type=e.type,
            description=e.description,
            properties=dict(e.properties),
            created_at=e.created_at,
        )


class EntityMatch(Entity):
    """An entity in a list: with ``score`` and ``match`` when it answers a search."""

    score: float | None = Field(None, description="How well it matches (search only).")
    match: Literal["name", "meaning"] | None = None

    @classmethod
    def of_hit(cls, h: EntityHit) -> EntityMatch:
        return cls(
            **Entity.of(h.entity).model_dump(),
            score=h.score,
            match="name" if h.match == "name" else "meaning",
        )


class Relation(BaseModel):
    id: uuid.UUID
    source_id: uuid.UUID
    source: str = Field(description="The source entity's name.")
    type: str
    target_id: uuid.UUID
    target: str = Field(description="The target entity's name.")
    weight: float
    valid_from: datetime | None
    valid_to: datetime | None
    properties: Properties

    @classmethod
    def of(cls, r: RelationView) -> Relation:
        return cls(**cls.fields_of(r))

    @staticmethod
    def fields_of(r: RelationView) -> dict[str, Any]:
        """This model's fields from a relation (also written as JSON without the model)."""
        return {
            "id": r.id,
            "source_id": r.source_id,
            "source": r.source_name,
            "type": r.type,
            "target_id": r.target_id,
            "target": r.target_name,
            "weight": r.weight,
            "valid_from": r.valid_from,
            "valid_to": r.valid_to,
            "properties": r.properties,
        }


class EntityWithRelations(Entity):
    relations: list[Relation] = Field(description="Its relations, both directions.")
    out_degree: int
    in_degree: int

    @classmethod
    def of_details(cls, d: EntityDetails) -> EntityWithRelations:
        return cls(
            **Entity.of(d.entity).model_dump(),
            relations=[Relation.of(r) for r in d.relations],
            out_degree=d.out_degree,
            in_degree=d.in_degree,
        )


class Node(BaseModel):
    id: uuid.UUID
    name: str
    type: str
    description: str
    depth: int = Field(description="Hops from the root entity.")
    properties: Properties


class NeighbourhoodOut(BaseModel):
    root_id: uuid.UUID
    depth: int
    node_limit: int
    truncated: bool = Field(description="More entities were reachable than node_limit.")
    edges_truncated: bool
    nodes: list[Node]
    edges: list[Relation]

    @staticmethod
    def json_of(n: Neighbourhood) -> bytes:
        """This model's JSON without a model per node and relation: pydantic-core writes
        the same JSON from plain dicts (uuids, datetimes, NaN as ``null``). A capped
        neighbourhood has ~1,000 of them, and validating each one's model cost a third of
        the request's CPU (7 of ~20 ms at 500 nodes)."""
        return to_json(
            {
                "root_id": n.root_id,
                "depth": n.depth,
                "node_limit": n.node_limit,
                "truncated": n.truncated,
                "edges_truncated": n.edges_truncated,
                "nodes": [
                    {
                        "id": x.id,
                        "name": x.name,
                        "type": x.type,
                        "description": x.description,
                        "depth": x.depth,
                        "properties": x.properties,
                    }
                    for x in n.nodes
                ],
                "edges": [Relation.fields_of(r) for r in n.edges],
            },
            inf_nan_mode="null",
        )


class PathOut(BaseModel):
    found: bool
    length: int = Field(description="Relations on the path (0 when none was found).")
    searched_depth: int
    gave_up: bool = Field(description="The search hit its visit limit before an answer.")
    nodes: list[Entity]
    edges: list[Relation]

    @classmethod
    def of(cls, p: PathResult) -> PathOut:
        return cls(
            found=p.found,
            length=p.length,
            searched_depth=p.searched_depth,
            gave_up=p.gave_up,
            nodes=[Entity.of(e) for e in p.nodes],
            edges=[Relation.of(e) for e in p.edges],
        )


class Stats(BaseModel):
    entities: int
    relations: int
    entity_types: list[str]
    relation_types: list[str]

    @classmethod
    def of(cls, s: GraphStats) -> Stats:
        return cls(
            entities=s["entities"],
            relations=s["relations"],
            entity_types=s["entity_types"],
            relation_types=s["relation_types"],
        )


class Imported(BaseModel):
    imported: bool
    entities_created: int
    entities_existing: int = Field(description="Names the import found among your entities.")
    relations_created: int
    summary: str

    @classmethod
    def of(cls, r: ImportReport) -> Imported:
        return cls(
            imported=r.imported,
            entities_created=r.entities_created,
            entities_existing=r.entities_existing,
            relations_created=r.relations_created,
            summary=r.summary,
        )


class NewEntity(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME, examples=["Ada Lovelace"])
    type: str = Field("thing", max_length=MAX_TYPE, examples=["person"])
    description: str = Field("", max_length=MAX_DESCRIPTION)
    properties: Properties = Field(default_factory=dict, description="A JSON object (16 KB).")


class EntityChange(BaseModel):
    """The fields to change (the others stay)."""

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME)
    type: str | None = Field(None, max_length=MAX_TYPE)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    properties: Properties | None = None


class NewRelation(BaseModel):
    """``source -[type]-> target`` between two of your entities."""

    source_id: uuid.UUID
    target_id: uuid.UUID
    type: str = Field(min_length=1, max_length=MAX_TYPE, examples=["works_at"])
    weight: float = Field(1.0, allow_inf_nan=False)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    properties: Properties = Field(default_factory=dict)


class RelationChange(BaseModel):
    """The fields to change (the others stay); ``clear_validity`` empties the period."""

    type: str | None = Field(None, min_length=1, max_length=MAX_TYPE)
    weight: float | None = Field(None, allow_inf_nan=False)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    clear_validity: bool = False


# -- entities ----------------------------------------------------------------------------------


@router.get("/entities", response_model=list[EntityMatch])
def list_entities(
    user: CurrentUser,
    services: ServicesDep,
    q: Annotated[
        str | None,
        Query(max_length=MAX_NAME, description="Search by name and / or meaning (best first)."),
    ] = None,
    mode: Annotated[SearchMode, Query(description="How q matches.")] = "both",
    type_: Annotated[
        str | None,
        Query(alias="type", max_length=MAX_TYPE, description="Without q: only this type."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most 100 with q.")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Without q.")] = 0,
) -> list[EntityMatch]:
    """Search your entities (``q``), or list them by name (optionally of one ``type``)."""
    if q is not None:
        with fields_named(query="q"):
            hits = services.knowledge_graph.search_entities(user, q, min(limit, 100), mode=mode)
        return [EntityMatch.of_hit(h) for h in hits]
    entities = services.knowledge_graph.list_entities(user, type_=type_, limit=limit, offset=offset)
    return [EntityMatch(**Entity.of(e).model_dump()) for e in entities]


@router.post("/entities", response_model=Entity, status_code=status.HTTP_201_CREATED)
def create_entity(body: NewEntity, user: CurrentUser, services: ServicesDep) -> Entity:
    """Create an entity (the same name may exist twice)."""
    return Entity.of(
        services.knowledge_graph.create_entity(
            user, body.name, body.type, body.description, body.properties
        )
    )


@router.get("/entities/{entity_id}", response_model=EntityWithRelations)
def get_entity(
    entity_id: uuid.UUID,
    user: CurrentUser,
    services: ServicesDep,
    relation_limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> EntityWithRelations:
    """An entity with its relations (both directions) and degree."""
    return EntityWithRelations.of_details(
        services.knowledge_graph.get_entity(user, entity_id, relation_limit)
    )


@router.patch("/entities/{entity_id}", response_model=Entity)
def change_entity(
    entity_id: uuid.UUID, body: EntityChange, user: CurrentUser, services: ServicesDep
) -> Entity:
    """Change an entity's name, type, description or properties (its embedding follows)."""
    return Entity.of(
        services.knowledge_graph.update_entity(
            user,
            entity_id,
            name=body.name,
            type_=body.type,
            description=body.description,
            properties=body.properties,
        )
    )


@router.delete("/entities/{entity_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_entity(entity_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> None:
    """Delete an entity and every relation touching it."""
    services.knowledge_graph.delete_entity(user, entity_id)


@router.get("/entities/{entity_id}/neighbourhood", response_model=NeighbourhoodOut)
def neighbourhood(
    entity_id: uuid.UUID,
    user: CurrentUser,
    services: ServicesDep,
    relation_types: RelationTypes = None,
    as_of: AsOf = None,
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH, description="Hops from the entity.")] = 1,
    limit: Annotated[
        int, Query(ge=1, le=MAX_NODE_LIMIT, description="At most this many entities.")
    ] = DEFAULT_NODE_LIMIT,
    direction: Annotated[Direction, Query(description="Which relations to follow.")] = "both",
) -> Response:
    """Entities within ``depth`` hops and the relations among them (one SQL round trip),
    nearest first, capped at ``limit`` (``truncated`` says when more were reachable)."""
    with fields_named(node_limit="limit", relation_types="relation_type"):
        found = services.knowledge_graph.neighbourhood(
            user,
            entity_id,
            depth=depth,
            direction=direction,
            relation_types=relation_types or (),
            as_of=as_of,
            node_limit=limit,
        )
    return Response(NeighbourhoodOut.json_of(found), media_type="application/json")


@router.get(
    "/entities/{entity_id}/neighbourhood/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": 'JSON lines: every node (`{"node": ...}`, nearest first), then '
            'every relation among them (`{"relation": ...}`), streamed as read.',
            "content": {NDJSON: {"schema": {"type": "string"}}},
        }
    },
)
def export_neighbourhood(
    entity_id: uuid.UUID,
    user: CurrentUser,
    services: ServicesDep,
    relation_types: RelationTypes = None,
    as_of: AsOf = None,
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH, description="Hops from the entity.")] = 1,
    direction: Annotated[Direction, Query(description="Which relations to follow.")] = "both",
) -> StreamingResponse:
    """The whole neighbourhood, uncapped, streamed (sent as it is written, never built whole
    first); an unknown entity is a 404 before anything is sent."""
    with fields_named(relation_types="relation_type"):
        lines = services.knowledge_graph.export_neighbourhood(
            user,
            entity_id,
            depth=depth,
            direction=direction,
            relation_types=relation_types or (),
            as_of=as_of,
        )
    return StreamingResponse(lines, media_type=NDJSON)


# -- relations ---------------------------------------------------------------------------------


@router.post("/relations", response_model=Relation, status_code=status.HTTP_201_CREATED)
def create_relation(body: NewRelation, user: CurrentUser, services: ServicesDep) -> Relation:
    """Relate two of your entities."""
    return Relation.of(
        services.knowledge_graph.create_relation(
            user,
            body.source_id,
            body.target_id,
            body.type,
            weight=body.weight,
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            properties=body.properties,
        )
    )


@router.patch("/relations/{relation_id}", response_model=Relation)
def change_relation(
    relation_id: uuid.UUID, body: RelationChange, user: CurrentUser, services: ServicesDep
) -> Relation:
    """Change a relation's type, weight or validity period."""
    return Relation.of(
        services.knowledge_graph.update_relation(
            user,
            relation_id,
            type_=body.type,
            weight=body.weight,
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            clear_validity=body.clear_validity,
        )
    )


@router.delete("/relations/{relation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_relation(relation_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> None:
    services.knowledge_graph.delete_relation(user, relation_id)


# -- graph queries -----------------------------------------------------------------------------


@router.get("/path", response_model=PathOut)
def shortest_path(
    user: CurrentUser,
    services: ServicesDep,
    source: Annotated[uuid.UUID, Query(alias="from", description="The entity to start from.")],
    target: Annotated[uuid.UUID, Query(alias="to", description="The entity to reach.")],
    relation_types: RelationTypes = None,
    as_of: AsOf = None,
    max_depth: Annotated[int, Query(ge=1, le=MAX_PATH_DEPTH)] = 6,
    directed: Annotated[bool, Query(description="Follow relations only forwards.")] = False,
) -> PathOut:
    """A shortest path (fewest relations) between two of your entities, or ``found: false``."""
    with fields_named(relation_types="relation_type"):
        found = services.knowledge_graph.shortest_path(
            user,
            source,
            target,
            max_depth=max_depth,
            directed=directed,
            relation_types=relation_types or (),
            as_of=as_of,
        )
    return PathOut.of(found)


@router.get("/stats", response_model=Stats)
def stats(user: CurrentUser, services: ServicesDep) -> Stats:
    """How many entities and relations you have, and the types in use."""
    return Stats.of(services.knowledge_graph.stats(user))


# -- import ------------------------------------------------------------------------------------

IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            'JSON: `{"entities": [{name, type, description, properties}], "relations": '
            "[{source, target, type, source_type, target_type, weight, valid_from, valid_to, "
            "properties}]}` (or just a list of relations). CSV: a header with `name` "
            "(entities) or `source,target,type` (relations; also `source_type`, "
            "`target_type`, `weight`, `valid_from`, `valid_to`). Relations name their ends; "
            "unknown names become new entities."
        ),
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "properties": {
                                "entities": {"type": "array", "items": {"type": "object"}},
                                "relations": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                        {"type": "array", "items": {"type": "object"}},
                    ]
                }
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}

IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    415: problem_doc(415, "Not JSON or CSV"),
    422: problem_doc(
        422,
        "Nothing imported: `errors` lists the rejected rows (field: `entity 3`, `relation 7` "
        "or `file`), or a parameter is invalid.",
    ),
}


_FORMATS: dict[str, Literal["csv", "json"]] = {
    "application/json": "json",
    "text/csv": "csv",
}


@router.post(
    "/import",
    response_model=Imported,
    openapi_extra=IMPORT_BODY,
    responses=IMPORT_RESPONSES,
    summary="Import entities and relations from JSON or CSV (all rows or none)",
)
async def import_graph(
    request: Request, user: CurrentUser, services: ServicesDep
) -> Imported | JSONResponse:
    """The body's ``Content-Type`` says its format. Every row is checked before anything is
    written; one bad row and nothing is imported (the 422 lists every rejected row)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = _FORMATS.get(media_type)
    if fmt is None:
        return problem_response(
            415, "Send the import as application/json or text/csv.", "unsupported_media_type"
        )
    data = await request.body()
    report = await run_in_threadpool(services.knowledge_graph.import_data, user, data, fmt)
    if not report.imported:
        return problem_response(
            422,
            report.summary,
            "import_rejected",
            errors=[
                FieldProblem(
                    field="file" if r.kind == "file" else f"{r.kind} {r.row}", message=r.reason
                )
                for r in report.rejected[:MAX_IMPORT_PROBLEMS]
            ],
        )
    return Imported.of(report)
