"""Knowledge graph SQL: entities, relations, the neighbourhood walk and shortest paths.

The neighbourhood is ONE statement: a recursive CTE that walks ``(node, depth)`` pairs with
``UNION`` (so a cycle cannot loop: a pair is emitted once and the depth is bounded), read
lazily through a ``LIMIT`` so a hub with thousands of neighbours stops after enough rows,
then deduplicated by node and capped. The SQL-standard ``CYCLE`` clause is not used: it tracks
paths, not visited nodes, and explodes on hubs (PERFORMANCE.md).

Row-level security scopes every statement to the acting user.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    String,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Session, aliased

from jarvis.db.tables import EMBEDDING_DIM, KgEntity, KgRelation

Direction = Literal["out", "in", "both"]

# Relation filters shared by the walk and the edge query (:types empty = every type).
_REL_FILTER = """
    (cardinality(:types) = 0 OR r.type = ANY(:types))
    AND (CAST(:as_of AS timestamptz) IS NULL OR (
        (r.valid_from IS NULL OR r.valid_from <= CAST(:as_of AS timestamptz))
        AND (r.valid_to IS NULL OR r.valid_to > CAST(:as_of AS timestamptz))))
"""

_NEIGHBOURHOOD_SQL = text(
    f"""
    WITH RECURSIVE walk(node, depth) AS (
        SELECT CAST(:root AS uuid), 0
        UNION
        SELECT n.node, w.depth + 1
        FROM walk w
        CROSS JOIN LATERAL (
            SELECT r.target_id AS node FROM kg_relations r
            WHERE :follow_out AND r.source_id = w.node AND {_REL_FILTER}
            UNION ALL
            SELECT r.source_id AS node FROM kg_relations r
            WHERE :follow_in AND r.target_id = w.node AND {_REL_FILTER}
        ) n
        WHERE w.depth < :max_depth
    ),
    raw AS (SELECT node, depth FROM walk LIMIT :raw_limit),
    ranked AS (SELECT node, min(depth) AS depth FROM raw GROUP BY node),
    kept AS (SELECT node, depth FROM ranked ORDER BY depth, node LIMIT :node_limit),
    kept_ids AS (SELECT array_agg(node) AS ids FROM kept),
    -- "= ANY(<one-time array>)" on both ends: index conditions on (source_id, target_id), so
    -- a hub's thousands of edges are filtered in the index, not fetched from the heap.
    edges AS (
        SELECT r.id, r.source_id, r.target_id, r.type, r.weight, r.valid_from, r.valid_to,
               r.properties
        FROM kg_relations r
        WHERE r.source_id = ANY(CAST((SELECT ids FROM kept_ids) AS uuid[]))
          AND r.target_id = ANY(CAST((SELECT ids FROM kept_ids) AS uuid[])) AND {_REL_FILTER}
        LIMIT :edge_limit
    )
    SELECT
        (SELECT count(*) FROM ranked) AS seen,
        (SELECT coalesce(json_agg(json_build_object(
            'id', e.id, 'name', e.name, 'type', e.type, 'description', e.description,
            'properties', e.properties, 'depth', k.depth) ORDER BY k.depth, e.name), '[]'::json)
         FROM kg_entities e JOIN kept k ON k.node = e.id
         WHERE e.id = ANY(CAST((SELECT ids FROM kept_ids) AS uuid[]))) AS nodes,
        (SELECT coalesce(json_agg(json_build_object(
            'id', x.id, 'source_id', x.source_id, 'target_id', x.target_id, 'type', x.type,
            'weight', x.weight, 'valid_from', x.valid_from, 'valid_to', x.valid_to,
            'properties', x.properties)), '[]'::json)
         FROM edges x) AS edges
    """
).bindparams(
    bindparam("root", type_=UUID(as_uuid=True)),
    bindparam("follow_out", type_=Boolean()),
    bindparam("follow_in", type_=Boolean()),
    bindparam("types", type_=ARRAY(String())),
    bindparam("as_of", type_=DateTime(timezone=True)),
    bindparam("max_depth", type_=Integer()),
    bindparam("raw_limit", type_=Integer()),
    bindparam("node_limit", type_=Integer()),
    bindparam("edge_limit", type_=Integer()),
)

_STEP_SQL = text(
    f"""
    SELECT r.source_id AS from_id, r.target_id AS to_id, r.id, r.type, true AS forward
    FROM kg_relations r
    WHERE :follow_out AND r.source_id = ANY(:frontier) AND {_REL_FILTER}
    UNION ALL
    SELECT r.target_id AS from_id, r.source_id AS to_id, r.id, r.type, false AS forward
    FROM kg_relations r
    WHERE :follow_in AND r.target_id = ANY(:frontier) AND {_REL_FILTER}
    """
).bindparams(
    bindparam("frontier", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("follow_out", type_=Boolean()),
    bindparam("follow_in", type_=Boolean()),
    bindparam("types", type_=ARRAY(String())),
    bindparam("as_of", type_=DateTime(timezone=True)),
)

_ENTITY_MEANING_SQL = text(
    """
    WITH mine AS MATERIALIZED (
        SELECT id, embedding <=> :query AS distance
        FROM kg_entities
        WHERE user_id = :user_id AND embedding_model = :model AND embedding IS NOT NULL
    )
    SELECT mine.id, 1 - mine.distance AS score
    FROM mine ORDER BY mine.distance, mine.id LIMIT :k
    """
).bindparams(
    bindparam("query", type_=Vector(EMBEDDING_DIM)),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("k", type_=Integer()),
)


@dataclass(frozen=True, slots=True)
class NeighbourhoodRows:
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    seen: int
    edges_truncated: bool


@dataclass(frozen=True, slots=True)
class Step:
    from_id: uuid.UUID
    to_id: uuid.UUID
    relation_id: uuid.UUID
    type: str
    forward: bool


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class KnowledgeGraphRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- entities -----------------------------------------------------------------------

    def add_entity(self, **values: Any) -> KgEntity:
        entity = KgEntity(id=uuid.uuid4(), **values)
        self.session.add(entity)
        self.session.flush()
        return entity

    def add_entities(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(KgEntity), rows)

    def add_relations(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(KgRelation), rows)

    def get_entity(self, entity_id: uuid.UUID) -> KgEntity | None:
        return self.session.get(KgEntity, entity_id)

    def get_entities(self, ids: Sequence[uuid.UUID]) -> list[KgEntity]:
        if not ids:
            return []
        return list(self.session.scalars(select(KgEntity).where(KgEntity.id.in_(list(ids)))))

    def delete_entity(self, entity_id: uuid.UUID) -> bool:
        result = self.session.execute(delete(KgEntity).where(KgEntity.id == entity_id))
        return bool(getattr(result, "rowcount", 0))

    def by_names(self, user_id: uuid.UUID, names: Sequence[str]) -> dict[str, KgEntity]:
        """Existing entities by lower-cased name (the oldest wins when names repeat)."""
        lowered = sorted({n.lower() for n in names})
        if not lowered:
            return {}
        rows = self.session.scalars(
            select(KgEntity)
            .where(KgEntity.user_id == user_id, func.lower(KgEntity.name).in_(lowered))
            .order_by(KgEntity.created_at.desc(), KgEntity.id.desc())
        )
        return {e.name.lower(): e for e in rows}

    def search_by_name(self, user_id: uuid.UUID, query: str, limit: int) -> list[KgEntity]:
        """Exact, prefix, substring and trigram matches (``ix_kg_entities_name_trgm``)."""
        q = query.strip()
        pattern = f"%{_like_escape(q)}%"
        prefix = f"{_like_escape(q.lower())}%"
        sim = func.similarity(KgEntity.name, q)
        stmt = (
            select(KgEntity)
            .where(
                KgEntity.user_id == user_id,
                or_(KgEntity.name.ilike(pattern, escape="\\"), KgEntity.name.op("%")(q)),
            )
            .order_by(
                (func.lower(KgEntity.name) == q.lower()).desc(),
                func.lower(KgEntity.name).like(prefix, escape="\\").desc(),
                sim.desc(),
                KgEntity.name,
            )
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def search_by_meaning(
        self, user_id: uuid.UUID, model: str, vector: Sequence[float], limit: int
    ) -> list[tuple[uuid.UUID, float]]:
        rows = self.session.execute(
            _ENTITY_MEANING_SQL,
            {"query": list(vector), "user_id": user_id, "model": model, "k": limit},
        )
        return [(r.id, float(r.score)) for r in rows]

    def list_entities(
        self, user_id: uuid.UUID, *, type_: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[KgEntity]:
        stmt = select(KgEntity).where(KgEntity.user_id == user_id)
        if type_:
            stmt = stmt.where(KgEntity.type == type_)
        return list(
            self.session.scalars(
                stmt.order_by(KgEntity.name, KgEntity.id).limit(limit).offset(offset)
            )
        )

    def count_entities(self, user_id: uuid.UUID) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(KgEntity).where(KgEntity.user_id == user_id)
            )
            or 0
        )

    def count_relations(self, user_id: uuid.UUID) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(KgRelation).where(KgRelation.user_id == user_id)
            )
            or 0
        )

    def entity_types(self, user_id: uuid.UUID) -> list[str]:
        return list(
            self.session.scalars(
                select(KgEntity.type)
                .where(KgEntity.user_id == user_id)
                .distinct()
                .order_by(KgEntity.type)
            )
        )

    def relation_types(self, user_id: uuid.UUID) -> list[str]:
        return list(
            self.session.scalars(
                select(KgRelation.type)
                .where(KgRelation.user_id == user_id)
                .distinct()
                .order_by(KgRelation.type)
            )
        )

    def degree(self, entity_id: uuid.UUID) -> tuple[int, int]:
        out_n = self.session.scalar(
            select(func.count()).select_from(KgRelation).where(KgRelation.source_id == entity_id)
        )
        in_n = self.session.scalar(
            select(func.count()).select_from(KgRelation).where(KgRelation.target_id == entity_id)
        )
        return int(out_n or 0), int(in_n or 0)

    # -- relations ------------------------------------------------------------------------

    def add_relation(self, **values: Any) -> KgRelation:
        relation = KgRelation(id=uuid.uuid4(), **values)
        self.session.add(relation)
        self.session.flush()
        return relation

    def get_relation(self, relation_id: uuid.UUID) -> KgRelation | None:
        return self.session.get(KgRelation, relation_id)

    def delete_relation(self, relation_id: uuid.UUID) -> bool:
        result = self.session.execute(delete(KgRelation).where(KgRelation.id == relation_id))
        return bool(getattr(result, "rowcount", 0))

    def find_relation(
        self, source_id: uuid.UUID, target_id: uuid.UUID, type_: str
    ) -> KgRelation | None:
        return self.session.scalar(
            select(KgRelation)
            .where(
                KgRelation.source_id == source_id,
                KgRelation.target_id == target_id,
                KgRelation.type == type_,
                KgRelation.valid_to.is_(None),
            )
            .limit(1)
        )

    def relations_of(
        self, entity_id: uuid.UUID, limit: int = 200
    ) -> list[tuple[KgRelation, KgEntity, KgEntity]]:
        """Relations touching an entity (both directions) with both end entities."""
        src = aliased(KgEntity)
        dst = aliased(KgEntity)
        stmt = (
            select(KgRelation, src, dst)
            .join(src, src.id == KgRelation.source_id)
            .join(dst, dst.id == KgRelation.target_id)
            .where(or_(KgRelation.source_id == entity_id, KgRelation.target_id == entity_id))
            .order_by(KgRelation.type, KgRelation.created_at, KgRelation.id)
            .limit(limit)
        )
        return [(r, s, d) for r, s, d in self.session.execute(stmt)]

    # -- graph queries --------------------------------------------------------------------

    def neighbourhood(
        self,
        root: uuid.UUID,
        *,
        depth: int,
        direction: Direction,
        types: Sequence[str],
        as_of: datetime | None,
        node_limit: int,
        edge_limit: int,
    ) -> NeighbourhoodRows:
        """Nodes within ``depth`` hops of ``root`` (capped at ``node_limit``) and the edges
        among them, in one round trip. ``seen > node_limit`` means the cap cut the walk."""
        raw_limit = (node_limit + 1) * (depth + 1)
        row = self.session.execute(
            _NEIGHBOURHOOD_SQL,
            {
                "root": root,
                "follow_out": direction in ("out", "both"),
                "follow_in": direction in ("in", "both"),
                "types": list(types),
                "as_of": as_of,
                "max_depth": depth,
                "raw_limit": raw_limit,
                "node_limit": node_limit,
                "edge_limit": edge_limit + 1,
            },
        ).one()
        edges = list(row.edges or [])
        return NeighbourhoodRows(
            nodes=list(row.nodes or []),
            edges=edges[:edge_limit],
            seen=int(row.seen),
            edges_truncated=len(edges) > edge_limit,
        )

    def step(
        self,
        frontier: Sequence[uuid.UUID],
        *,
        follow_out: bool,
        follow_in: bool,
        types: Sequence[str],
        as_of: datetime | None,
    ) -> list[Step]:
        """All edges leaving a BFS frontier (one query per level, not per node)."""
        rows = self.session.execute(
            _STEP_SQL,
            {
                "frontier": list(frontier),
                "follow_out": follow_out,
                "follow_in": follow_in,
                "types": list(types),
                "as_of": as_of,
            },
        )
        return [Step(r.from_id, r.to_id, r.id, r.type, bool(r.forward)) for r in rows]
