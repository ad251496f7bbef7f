"""Knowledge graph SQL: entities, relations, the neighbourhood walk and shortest paths.

The capped neighbourhood is ONE round trip: ``jarvis_kg_walk`` (migration 0017, a plpgsql
SECURITY INVOKER function, so row-level security applies) walks breadth first, one statement
per level (depth is at most 3): level ``k`` is the relations of level ``k - 1``'s nodes, one
index range each, ``EXCEPT`` every node already reached (a hashed set operation, never an array
scanned per candidate: that took 32 s for a hub's 57k-node neighbourhood, PERFORMANCE.md). It
stops at the first level that overflows the cap and keeps that level's first names, so the kept
nodes are the nearest by depth, then name, then id. The statement around it reads the kept
nodes' rows and the relations among them. A recursive CTE cannot see what it already visited
(with ``UNION`` over (node, depth) it re-expands a node at every depth it is reached at), and the
SQL-standard ``CYCLE`` clause tracks paths, not visited nodes, and explodes on hubs.

Uncapped (:meth:`KnowledgeGraphRepository.stream_neighbourhood`), the same walk fills a
temporary table level by level and streams through a server-side cursor; the export's JSON
lines (:meth:`KnowledgeGraphRepository.stream_neighbourhood_json`) are copied out (``COPY``).

Row-level security scopes every statement to the acting user.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pgvector.sqlalchemy import HALFVEC
from pydantic_core import from_json
from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    Row,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Session, aliased

from jarvis.db.tables import KgEntity, KgRelation
from jarvis.db.vector_params import HalfvecParam

#: The type of a list-of-names parameter (``= ANY(:names)``).
_NAMES = ARRAY(String())

Direction = Literal["out", "in", "both"]

# Relation filters shared by the walk and the edge query (:types empty = every type).
_REL_FILTER = """
    (cardinality(:types) = 0 OR r.type = ANY(:types))
    AND (CAST(:as_of AS timestamptz) IS NULL OR (
        (r.valid_from IS NULL OR r.valid_from <= CAST(:as_of AS timestamptz))
        AND (r.valid_to IS NULL OR r.valid_to > CAST(:as_of AS timestamptz))))
"""


# The capped neighbourhood, one row (migration 0023: a SQL function, so its plan is made once
# per connection, not on every request): ``seen`` (how many nodes the walk reached; ``cap + 1``
# when the cap cut a level), the kept nodes as one JSON array (nearest first, each an array of
# its fields) and at most :edge_limit relations among them as another (with both end names).
# Parsed in one call each: 500 nodes and 500 relations as 1,000 rows of typed columns cost more
# to decode than the query took.
#: A walk's arguments (``_walk_params`` and the depth), typed.
_WALK_PARAMS = (
    bindparam("root", type_=UUID(as_uuid=True)),
    bindparam("depth", type_=Integer()),
    bindparam("follow_out", type_=Boolean()),
    bindparam("follow_in", type_=Boolean()),
    bindparam("types", type_=ARRAY(String())),
    bindparam("as_of", type_=DateTime(timezone=True)),
)

_NEIGHBOURHOOD = text(
    "SELECT seen, nodes, edges FROM jarvis_kg_neighbourhood("
    ":root, :depth, :follow_out, :follow_in, :types, :as_of, :node_limit, :edge_limit)"
).bindparams(
    *_WALK_PARAMS,
    bindparam("node_limit", type_=Integer()),
    bindparam("edge_limit", type_=Integer()),
)


# The uncapped walk (stream_neighbourhood): the same function, no cap, into a temporary table per
# connection (emptied at commit; no key to maintain: the walk returns each node once), analysed
# so the statement that streams is planned for its real size.
_HOOD_START = (
    text(
        "CREATE TEMP TABLE IF NOT EXISTS jarvis_hood_walk (node uuid NOT NULL, depth int NOT NULL) "
        "ON COMMIT DELETE ROWS"
    ),
    text("TRUNCATE jarvis_hood_walk"),  # empty already, unless used twice in one transaction
    # the final sort and hash joins of a 60k-node neighbourhood fit in memory
    text("SELECT set_config('work_mem', '64MB', true)"),
    text(
        """
        INSERT INTO jarvis_hood_walk (node, depth)
        SELECT node, depth FROM jarvis_kg_walk(
            :root, :depth, :follow_out, :follow_in, :types, CAST(:as_of AS timestamptz),
            NULL)
        """
    ).bindparams(*_WALK_PARAMS),
    text("ANALYZE jarvis_hood_walk"),
)
# Relations among the nodes (each relation carries its ends' names).
_HOOD_AMONG = f"""
     FROM kg_relations r
     JOIN jarvis_hood_walk s ON s.node = r.source_id JOIN jarvis_hood_walk t ON t.node = r.target_id
     WHERE {_REL_FILTER}"""


class _Quoted(str):
    """A field's SQL whose text goes between quotes as it is (a uuid: nothing to escape)."""


def _json_text(key: str, fields: Sequence[tuple[str, str]]) -> str:
    """SQL for ``{"<key>": {<fields>}}`` as text: one ``concat()`` of the keys' text and each
    value's JSON text, in order. ``concat`` keeps how to print each argument's type across rows;
    ``format()`` looks it up again on every row and scans its template (12 % slower over 500k
    relations), ``json_build_object`` 2-3x and ``jsonb_build_object`` 5x slower, and
    ``'...' || ... ||`` copies the growing text once per piece."""
    pieces: list[str] = []
    literal = "{" + f'"{key}": ' + "{"
    for i, (name, value) in enumerate(fields):
        quote = '"' if isinstance(value, _Quoted) else ""
        literal += ("" if i == 0 else ", ") + f'"{name}": ' + quote
        pieces += [f"'{literal}'", value]
        literal = quote
    pieces.append(f"'{literal}}}}}'")
    return f"concat({', '.join(pieces)})"


def _uuid(expr: str) -> str:
    return _Quoted(expr)


def _string(expr: str) -> str:
    """Quoted and escaped (a regular expression test to skip ``to_json`` cost more than it)."""
    return f"to_json({expr})"


def _nullable(expr: str) -> str:  # a timestamp
    return f"coalesce(to_json({expr})::text, 'null')"


def _number(expr: str) -> str:  # a float: NaN and infinities are strings in JSON
    return f"CASE WHEN {expr} IN ('NaN', 'Infinity', '-Infinity') THEN to_json({expr})::text ELSE {expr}::text END"


def _node_fields(n: str, depth: str) -> list[tuple[str, str]]:
    """A node's JSON fields: entity alias ``n``, its depth ``depth``."""
    return [
        ("id", _uuid(f"{n}.id")),
        ("name", _string(f"{n}.name")),
        ("type", _string(f"{n}.type")),
        ("description", _string(f"{n}.description")),
        ("depth", depth),
        ("properties", f"{n}.properties"),
    ]


#: A relation's JSON fields: relation ``r`` between the named nodes ``s`` and ``t``.
_RELATION_FIELDS = [
    ("id", _uuid("r.id")),
    ("source_id", _uuid("r.source_id")),
    ("source", _string("r.source_name")),
    ("type", _string("r.type")),
    ("target_id", _uuid("r.target_id")),
    ("target", _string("r.target_name")),
    ("weight", _number("r.weight")),
    ("valid_from", _nullable("r.valid_from")),
    ("valid_to", _nullable("r.valid_to")),
    ("properties", "r.properties"),
]
_NODE_JSON = _json_text("node", _node_fields("e", "h.depth"))
_RELATION_JSON = _json_text("relation", _RELATION_FIELDS)

_HOOD_JSON = text(
    f"""
    (SELECT {_NODE_JSON}
     FROM jarvis_hood_walk h JOIN kg_entities e ON e.id = h.node ORDER BY h.depth, e.name, e.id)
    UNION ALL
    (SELECT {_RELATION_JSON}
     {_HOOD_AMONG})
    """
).bindparams(
    bindparam("types", type_=ARRAY(String())),
    bindparam("as_of", type_=DateTime(timezone=True)),
)
#: An export's chunk: a streaming response sends each from a worker thread (one hop per chunk):
#: over HTTP a hub's 92 MB took 3.1 s in 64 KB chunks, 1.2-1.7 s in 1 MB ones (held in memory).
EXPORT_CHUNK_BYTES = 1 << 20
# The export's JSON lines, copied out verbatim: COPY's CSV with a delimiter and a quote byte
# that JSON text made by PostgreSQL never holds (it escapes every control character), so no
# row is ever quoted and each row is its line.
_JSON_LINES_COPY = "COPY ({query}) TO STDOUT (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
_HOOD_ROWS = text(
    f"""
    (SELECT 'n' AS kind, e.id, e.name AS a, e.type AS b, e.description AS c, h.depth,
            e.properties AS props, NULL::uuid AS source_id, NULL::uuid AS target_id,
            NULL::float8 AS weight, NULL::timestamptz AS valid_from,
            NULL::timestamptz AS valid_to
     FROM jarvis_hood_walk h JOIN kg_entities e ON e.id = h.node ORDER BY h.depth, e.name, e.id)
    UNION ALL
    (SELECT 'e', r.id, r.source_name, r.target_name, r.type, NULL, r.properties, r.source_id, r.target_id,
            r.weight, r.valid_from, r.valid_to
     {_HOOD_AMONG})
    """
).bindparams(
    bindparam("types", type_=ARRAY(String())),
    bindparam("as_of", type_=DateTime(timezone=True)),
)

# A re-embedded entity (a move between embedders; the vector in binary, see memory.py's
# ``_SET_EMBEDDING``).
_SET_ENTITY_EMBEDDING = text(
    "UPDATE kg_entities SET embedding = :embedding, embedding_model = :model WHERE id = :id"
).bindparams(
    bindparam("id", type_=UUID(as_uuid=True)),
    bindparam("embedding", type_=HalfvecParam()),
    bindparam("model", type_=String()),
)

# A user's entities by name, best first (migration 0026 finds the ids; read here as the app role).
_NAME_MATCHES = text(
    """
    SELECT e.* FROM jarvis_kg_name_matches(:query, :pattern, :prefix, :limit)
         WITH ORDINALITY AS m(id, n)
    JOIN kg_entities e ON e.id = m.id
    WHERE e.user_id = :user_id
    ORDER BY m.n
    """
).bindparams(bindparam("user_id", type_=UUID(as_uuid=True)), bindparam("limit", type_=Integer()))

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

# Exact scan of the user's entity vectors of one model (covering index, no shared HNSW).
_ENTITY_MEANING_SQL = text(
    """
    SELECT t.id, 1 - t.distance AS score FROM (
        SELECT id, embedding <=> :query AS distance
        FROM kg_entities
        WHERE user_id = :user_id AND embedding_model = :model AND embedding IS NOT NULL
        ORDER BY embedding <=> :query, id
        LIMIT :k
    ) t
    WHERE t.distance <> 'NaN'::float8
    ORDER BY t.distance, t.id
    """
).bindparams(
    bindparam("query", type_=HALFVEC()),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("k", type_=Integer()),
)


@dataclass(frozen=True, slots=True)
class NewEntity:
    """An entity to insert (the service cleans the fields and computes the embedding)."""

    user_id: uuid.UUID
    name: str
    type: str
    description: str
    properties: Mapping[str, object]
    embedding: Sequence[float] | None
    embedding_model: str
    created_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class NewRelation:
    """A relation to insert: ``source -[type]-> target``."""

    user_id: uuid.UUID
    source_id: uuid.UUID
    target_id: uuid.UUID
    type: str
    weight: float
    properties: Mapping[str, object]
    created_at: datetime
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(slots=True)  # not frozen: a frozen dataclass takes 5x as long to build
class NodeRow:
    """A neighbourhood node: an entity and its distance (in relations) from the root."""

    id: uuid.UUID
    name: str
    type: str
    description: str
    depth: int
    properties: dict[str, object]


@dataclass(slots=True)  # not frozen: a frozen dataclass takes 5x as long to build
class EdgeRow:
    """A relation among the neighbourhood's nodes, with its ends' names."""

    id: uuid.UUID
    source_id: uuid.UUID
    target_id: uuid.UUID
    type: str
    weight: float
    valid_from: datetime | None
    valid_to: datetime | None
    properties: dict[str, object]
    source_name: str = ""
    target_name: str = ""


@dataclass(frozen=True, slots=True)
class NeighbourhoodRows:
    nodes: list[NodeRow]
    edges: list[EdgeRow]
    seen: int
    edges_truncated: bool


@dataclass(frozen=True, slots=True)
class Step:
    """One edge leaving a BFS frontier: ``from_id`` is on the frontier, ``to_id`` is reached."""

    from_id: uuid.UUID
    to_id: uuid.UUID
    relation_id: uuid.UUID
    type: str
    forward: bool


#: A relation with its source and target entities.
RelationWithEnds = tuple[KgRelation, KgEntity, KgEntity]


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _json_object(value: object) -> dict[str, object]:
    """A properties object as parsed (each parse makes a new one: nothing to copy)."""
    return value if value.__class__ is dict else {}


#: A ``timestamptz`` as ``to_json`` writes it (ISO 8601 with its offset).
_from_iso = datetime.fromisoformat


_new_object = object.__new__
# UUID's two slots, set through their descriptors (object.__setattr__ looks each one up)
_set_int = uuid.UUID.__dict__["int"].__set__
_set_safety = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def uuid_of_int(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` with its two slots set directly: ``UUID.__init__`` re-checks a
    form that cannot be wrong here and costs twice as much (a capped neighbourhood makes ~1,000;
    the in-memory graph uses it too)."""
    made = _new_object(uuid.UUID)
    _set_int(made, value)
    _set_safety(made, _UNKNOWN_SAFETY)
    return made


def _parsed_uuid(text_form: str) -> uuid.UUID:
    """``uuid.UUID(text_form)`` for the canonical form PostgreSQL writes (``to_json`` of a
    ``uuid``), through :func:`uuid_of_int`."""
    return uuid_of_int(int(text_form.replace("-", ""), 16))


def _walk_params(
    root: uuid.UUID, direction: Direction, types: Sequence[str], as_of: datetime | None
) -> dict[str, object]:
    return {
        "root": root,
        "follow_out": direction in ("out", "both"),
        "follow_in": direction in ("in", "both"),
        "types": list(types),
        "as_of": as_of,
    }


def _node(r: Row[Any]) -> NodeRow:
    return NodeRow(r.id, r.a, r.b, r.c or "", int(r.depth), _json_object(r.props))


def _edge(r: Row[Any]) -> EdgeRow:
    return EdgeRow(
        r.id,
        r.source_id,
        r.target_id,
        r.c,
        float(r.weight),
        r.valid_from,
        r.valid_to,
        _json_object(r.props),
        r.a,
        r.b,
    )


def _entity_values(e: NewEntity) -> dict[str, object]:
    return {
        "id": e.id,
        "user_id": e.user_id,
        "name": e.name,
        "type": e.type,
        "description": e.description,
        "properties": dict(e.properties),
        "embedding": None if e.embedding is None else list(e.embedding),
        "embedding_model": e.embedding_model,
        "created_at": e.created_at,
        "updated_at": e.created_at,
    }


def _relation_values(r: NewRelation) -> dict[str, object]:
    return {
        "id": r.id,
        "user_id": r.user_id,
        "source_id": r.source_id,
        "target_id": r.target_id,
        "type": r.type,
        "weight": r.weight,
        "valid_from": r.valid_from,
        "valid_to": r.valid_to,
        "properties": dict(r.properties),
        "created_at": r.created_at,
    }


# -- the whole graph of one user, for a process to hold in memory (services/knowledge_graph/
# in_memory.py): entities by (name, id), so a node's number is its rank in the order the walk
# keeps names; relations as fixed-width binary COPY rows read straight into numpy arrays.
_GRAPH_VERSION = text("SELECT jarvis_kg_graph_version(:user_id)").bindparams(
    bindparam("user_id", type_=UUID(as_uuid=True))
)
_RELATION_COUNT = text("SELECT count(*) FROM kg_relations WHERE user_id = :user_id").bindparams(
    bindparam("user_id", type_=UUID(as_uuid=True))
)
_GRAPH_ENTITIES = (
    "SELECT id, name, type, description, properties::text FROM kg_entities "
    "WHERE user_id = %s ORDER BY name, id"
)
_GRAPH_RELATION_TYPES = (
    "SELECT coalesce(array_agg(DISTINCT type ORDER BY type), '{}') FROM kg_relations "
    "WHERE user_id = %s"
)
_GRAPH_RELATIONS_COPY = """
    COPY (SELECT id, source_id, target_id, array_position(%s::text[], type)::int4, weight,
                 coalesce(valid_from, '-infinity'), coalesce(valid_to, 'infinity')
          FROM kg_relations WHERE user_id = %s) TO STDOUT (FORMAT binary)"""
_GRAPH_RELATION_PROPERTIES = (
    "SELECT id, properties::text FROM kg_relations WHERE user_id = %s AND properties <> '{}'"
)
# One row of that COPY: a field count, then each field's length and its bytes (big-endian).
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("l0", ">i4"), ("id", "V16"),
        ("l1", ">i4"), ("source", "S16"),
        ("l2", ">i4"), ("target", "S16"),
        ("l3", ">i4"), ("type", ">i4"),
        ("l4", ">i4"), ("weight", ">f8"),
        ("l5", ">i4"), ("valid_from", ">i8"),
        ("l6", ">i4"), ("valid_to", ">i8"),
    ]
)  # fmt: skip
_COPY_HEADER, _COPY_TRAILER = 19, 2  # signature, flags, extension length; the -1 at the end


@dataclass(frozen=True, slots=True, eq=False)
class GraphArrays:
    """One user's whole graph. Entities in (name, id) order: an entity's number is its index.
    Relations: ends as those numbers, the type as an index into ``relation_types``, validity as
    PostgreSQL's microseconds since 2000-01-01 UTC (open ends as int64's min and max), the
    properties text of those that have any, by id bytes."""

    ids: list[uuid.UUID]
    names: list[str]
    types: list[str]
    descriptions: list[str]
    properties: list[str]
    relation_types: list[str]
    relation_ids: np.ndarray
    relation_sources: np.ndarray
    relation_targets: np.ndarray
    relation_type_codes: np.ndarray
    relation_weights: np.ndarray
    relation_valid_from: np.ndarray
    relation_valid_to: np.ndarray
    relation_properties: dict[bytes, str]


class KnowledgeGraphRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- entities -----------------------------------------------------------------------

    def add_entity(self, new: NewEntity) -> KgEntity:
        entity = KgEntity(**_entity_values(new))
        self.session.add(entity)
        self.session.flush()
        return entity

    def add_entities(self, rows: Sequence[NewEntity]) -> None:
        """Insert many entities in one batched statement."""
        if rows:
            self.session.execute(insert(KgEntity), [_entity_values(r) for r in rows])

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

    def ids_by_names(self, user_id: uuid.UUID, names: Sequence[str]) -> dict[str, uuid.UUID]:
        """Ids of existing entities by lower-cased name, ALL names in one query (an import
        resolves thousands at once); the oldest entity wins when a name repeats. Reads only
        (id, name, created_at) through ``ix_kg_entities_user_id_lower_name``, never the
        embeddings."""
        lowered = sorted({n.lower() for n in names})
        if not lowered:
            return {}
        rows = self.session.execute(
            select(KgEntity.id, KgEntity.name)
            .where(
                KgEntity.user_id == user_id,
                # one array parameter, not one bound value per name
                func.lower(KgEntity.name) == any_(bindparam("names", lowered, type_=_NAMES)),
            )
            .order_by(KgEntity.created_at.desc(), KgEntity.id.desc())
        )
        return {name.lower(): entity_id for entity_id, name in rows}

    def search_by_name(self, user_id: uuid.UUID, query: str, limit: int) -> list[KgEntity]:
        """Exact, prefix, substring and trigram matches, best first: ``jarvis_kg_name_matches``
        (migrations 0026, 0028) finds them through ``ix_kg_entities_name_trgm``, which a
        statement of the app role's cannot use under row-level security (``ILIKE`` and ``%``
        are not leakproof), ranking the other matches only when the names that start with the
        text do not fill the page; the entities are read by id under row-level security."""
        q = query.strip()
        stmt = (
            select(KgEntity)
            .from_statement(_NAME_MATCHES)
            .params(
                query=q,
                pattern=f"%{_like_escape(q)}%",
                prefix=f"{_like_escape(q.lower())}%",
                limit=limit,
                user_id=user_id,
            )
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

    def entities_not_in_model(
        self, user_id: uuid.UUID, model: str, batch_size: int, *, after: uuid.UUID | None = None
    ) -> list[tuple[uuid.UUID, str, str]]:
        """(id, name, description) of up to ``batch_size`` of the user's entities embedded
        with another model (or never), by id from past ``after``: the next batch to re-embed."""
        stmt = select(KgEntity.id, KgEntity.name, KgEntity.description).where(
            KgEntity.user_id == user_id,
            KgEntity.embedding_model.is_distinct_from(model),
        )
        if after is not None:
            stmt = stmt.where(KgEntity.id > after)
        rows = self.session.execute(stmt.order_by(KgEntity.id).limit(batch_size)).all()
        return [(r.id, r.name, r.description or "") for r in rows]

    def count_entities_not_in_model(self, user_id: uuid.UUID, model: str) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(KgEntity)
                .where(
                    KgEntity.user_id == user_id,
                    KgEntity.embedding_model.is_distinct_from(model),
                )
            )
            or 0
        )

    def set_entity_embeddings(
        self, vectors: Sequence[tuple[uuid.UUID, Sequence[float] | None]], model: str
    ) -> None:
        """Store new entity embeddings of one model (None: nothing to embed), one batch: one
        UPDATE by primary key sent for the whole batch, each vector in binary (as memories')."""
        if vectors:
            self.session.execute(
                _SET_ENTITY_EMBEDDING,
                [
                    {"id": entity_id, "embedding": vector, "model": model}
                    for entity_id, vector in vectors
                ],
            )

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

    def add_relation(self, new: NewRelation) -> KgRelation:
        relation = KgRelation(**_relation_values(new))
        self.session.add(relation)
        self.session.flush()
        return relation

    def add_relations(self, rows: Sequence[NewRelation]) -> None:
        """Insert many relations in one batched statement."""
        if rows:
            self.session.execute(insert(KgRelation), [_relation_values(r) for r in rows])

    def get_relation(self, relation_id: uuid.UUID) -> KgRelation | None:
        return self.session.get(KgRelation, relation_id)

    def get_relations(self, ids: Sequence[uuid.UUID]) -> list[KgRelation]:
        """Several relations in one query (missing or invisible ids are left out)."""
        if not ids:
            return []
        return list(self.session.scalars(select(KgRelation).where(KgRelation.id.in_(list(ids)))))

    def delete_relation(self, relation_id: uuid.UUID) -> bool:
        result = self.session.execute(delete(KgRelation).where(KgRelation.id == relation_id))
        return bool(getattr(result, "rowcount", 0))

    def find_relation(
        self, source_id: uuid.UUID, target_id: uuid.UUID, target_name: str, type_: str
    ) -> KgRelation | None:
        """The current ``source -[type]-> target`` relation, if any. The target's name (which
        each relation carries) makes it one probe of ``(source, target name, target)``, not a
        read of all the source's relations (a hub has thousands)."""
        return self.session.scalar(
            select(KgRelation)
            .where(
                KgRelation.source_id == source_id,
                KgRelation.target_name == target_name,
                KgRelation.target_id == target_id,
                KgRelation.type == type_,
                KgRelation.valid_to.is_(None),
            )
            .limit(1)
        )

    def relations_of(self, entity_id: uuid.UUID, limit: int = 200) -> list[RelationWithEnds]:
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

    def relations_of_many(
        self, entity_ids: Sequence[uuid.UUID], limit: int
    ) -> dict[uuid.UUID, list[RelationWithEnds]]:
        """:meth:`relations_of` for several entities in ONE query: each entity's first
        ``limit`` relations (same order), keyed by entity id."""
        if not entity_ids:
            return {}
        ids = list(entity_ids)
        # (relation, anchor) for each end that is one of the entities; UNION drops the
        # duplicate a self-loop would give.
        touching = union(
            select(KgRelation.id.label("rid"), KgRelation.source_id.label("anchor")).where(
                KgRelation.source_id.in_(ids)
            ),
            select(KgRelation.id.label("rid"), KgRelation.target_id.label("anchor")).where(
                KgRelation.target_id.in_(ids)
            ),
        ).subquery()
        order = (KgRelation.type, KgRelation.created_at, KgRelation.id)
        ranked = (
            select(
                touching.c.rid,
                touching.c.anchor,
                func.row_number().over(partition_by=touching.c.anchor, order_by=order).label("rn"),
            )
            .join(KgRelation, KgRelation.id == touching.c.rid)
            .subquery()
        )
        src = aliased(KgEntity)
        dst = aliased(KgEntity)
        stmt = (
            select(ranked.c.anchor, KgRelation, src, dst)
            .join(KgRelation, KgRelation.id == ranked.c.rid)
            .join(src, src.id == KgRelation.source_id)
            .join(dst, dst.id == KgRelation.target_id)
            .where(ranked.c.rn <= limit)
            .order_by(ranked.c.anchor, *order)
        )
        out: dict[uuid.UUID, list[RelationWithEnds]] = {i: [] for i in ids}
        for anchor, r, s, d in self.session.execute(stmt):
            out[anchor].append((r, s, d))
        return out

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
        """The nearest ``node_limit`` nodes within ``depth`` hops of ``root`` (by depth, then
        name) and the relations among them (at most ``edge_limit``), in one round trip.
        ``seen > node_limit`` means the cap cut the walk."""
        rows = self.session.execute(
            _NEIGHBOURHOOD,
            {
                **_walk_params(root, direction, types, as_of),
                "depth": depth,
                "node_limit": node_limit,
                "edge_limit": edge_limit + 1,
            },
        )
        row = rows.one()
        # Every relation's ends are kept nodes (migration 0029 sends their names once, with the
        # nodes): their ids are parsed once, and their names taken from there.
        ends: dict[str, NodeRow] = {}
        nodes = []
        for node_id, name, type_, description, node_depth, properties in from_json(row.nodes):
            node = NodeRow(
                _parsed_uuid(node_id),
                name,
                type_,
                description,
                node_depth,
                _json_object(properties),
            )
            ends[node_id] = node
            nodes.append(node)
        edges = []
        for (
            edge_id,
            source_id,
            type_,
            target_id,
            weight,
            valid_from,
            valid_to,
            properties,
        ) in from_json(row.edges):
            source, target = ends[source_id], ends[target_id]
            edges.append(
                EdgeRow(
                    _parsed_uuid(edge_id),
                    source.id,
                    target.id,
                    type_,
                    float(weight),
                    valid_from and _from_iso(valid_from),
                    valid_to and _from_iso(valid_to),
                    _json_object(properties),
                    source.name,
                    target.name,
                )
            )
        return NeighbourhoodRows(
            nodes=nodes,
            edges=edges[:edge_limit],
            seen=int(row.seen),
            edges_truncated=len(edges) > edge_limit,
        )

    def stream_neighbourhood(
        self,
        root: uuid.UUID,
        *,
        depth: int,
        direction: Direction,
        types: Sequence[str],
        as_of: datetime | None,
        batch_size: int = 2000,
    ) -> Iterator[NodeRow | EdgeRow]:
        """Every node within ``depth`` hops (by depth, then name), then every relation among
        them, read from a server-side cursor ``batch_size`` rows at a time: memory stays flat
        however large the neighbourhood (60k nodes and 270k relations around a hub).

        ``jarvis_kg_walk`` without a cap fills a transaction-local temporary table, analysed
        so the final statement is planned for its real size (hash joins over the tables, not
        60k index probes)."""
        params = self._walk_into_hood(root, depth, direction, types, as_of)
        result = self.session.execute(
            _HOOD_ROWS, params, execution_options={"stream_results": True, "yield_per": batch_size}
        )
        for r in result:
            yield _node(r) if r.kind == "n" else _edge(r)

    def stream_neighbourhood_json(
        self,
        root: uuid.UUID,
        *,
        depth: int,
        direction: Direction,
        types: Sequence[str],
        as_of: datetime | None,
        chunk_bytes: int = EXPORT_CHUNK_BYTES,
    ) -> Iterator[str]:
        """:meth:`stream_neighbourhood` as JSON lines made by PostgreSQL (``{"node": {...}}``
        then ``{"relation": {...}}``, each ending in a newline), in chunks of whole lines of
        about ``chunk_bytes``. The lines are copied out of the server (``COPY``): an export
        never builds a Python object per row, and a streaming response writes one chunk at a
        time, not one line (a hub's 330k lines)."""
        params = self._walk_into_hood(root, depth, direction, types, as_of)
        query = _HOOD_JSON.compile(dialect=self.session.get_bind().dialect)
        driver: Any = self.session.connection().connection.driver_connection
        with driver.cursor().copy(
            _JSON_LINES_COPY.format(query=query), query.construct_params(params)
        ) as copy:
            chunk: list[bytes | memoryview] = []
            size = 0
            for line in copy:  # one row, newline included
                chunk.append(line)
                size += len(line)
                if size >= chunk_bytes:
                    yield b"".join(chunk).decode()
                    chunk.clear()
                    size = 0
            if chunk:
                yield b"".join(chunk).decode()

    def _walk_into_hood(
        self,
        root: uuid.UUID,
        depth: int,
        direction: Direction,
        types: Sequence[str],
        as_of: datetime | None,
    ) -> dict[str, object]:
        params = {**_walk_params(root, direction, types, as_of), "depth": depth}
        for sql in _HOOD_START:
            self.session.execute(sql, params)
        return params

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

    # -- the whole graph (one user's, for a process to hold in memory) ---------------------

    def graph_version(self, user_id: uuid.UUID) -> int:
        """The number every transaction that writes the user's entities or relations raises
        (migration 0030); 0 before the first write. One statement, in autocommit mode too (it
        names the user for its own read and leaves the acting user as it was)."""
        return int(self.session.scalar(_GRAPH_VERSION, {"user_id": user_id}) or 0)

    def relation_count(self, user_id: uuid.UUID) -> int:
        return int(self.session.scalar(_RELATION_COUNT, {"user_id": user_id}) or 0)

    def graph_arrays(self, user_id: uuid.UUID) -> GraphArrays:
        """The user's every entity and relation (named, not only scoped by row-level security)."""
        driver: Any = self.session.connection().connection.driver_connection
        cursor = driver.cursor()
        cursor.execute(_GRAPH_ENTITIES, (user_id,))
        rows = cursor.fetchall()
        ids = [r[0] for r in rows]
        names = [r[1] for r in rows]
        types = [r[2] for r in rows]
        descriptions = [r[3] for r in rows]
        properties = [r[4] for r in rows]
        del rows
        cursor.execute(_GRAPH_RELATION_TYPES, (user_id,))
        relation_types: list[str] = cursor.fetchone()[0]
        buffer = bytearray()
        with cursor.copy(_GRAPH_RELATIONS_COPY, (relation_types, user_id)) as copy:
            for block in copy:
                buffer += block
        count = (len(buffer) - _COPY_HEADER - _COPY_TRAILER) // _COPY_ROW.itemsize
        body = np.frombuffer(buffer, dtype=_COPY_ROW, offset=_COPY_HEADER, count=count)
        if not (body["fields"] == 7).all():  # a NULL would shift every field after it
            raise RuntimeError("unexpected relation row layout")
        cursor.execute(_GRAPH_RELATION_PROPERTIES, (user_id,))
        relation_properties = {r[0].bytes: r[1] for r in cursor.fetchall()}
        # each end's number: its entity's index in (name, id) order, found by a sorted search
        keys = np.frombuffer(b"".join(u.bytes for u in ids), dtype="S16")
        by_key = np.argsort(keys, kind="stable")
        sorted_keys = keys[by_key]
        ends = [by_key[np.searchsorted(sorted_keys, body[end])] for end in ("source", "target")]
        for end, found in zip(("source", "target"), ends, strict=True):
            if found.size and (keys[found] != body[end]).any():  # an end outside the user's graph
                raise RuntimeError("a relation's end is not among the user's entities")
        return GraphArrays(
            ids=ids,
            names=names,
            types=types,
            descriptions=descriptions,
            properties=properties,
            relation_types=relation_types,
            relation_ids=np.ascontiguousarray(body["id"]),
            relation_sources=ends[0].astype(np.int32),
            relation_targets=ends[1].astype(np.int32),
            relation_type_codes=body["type"].astype(np.int32) - 1,
            relation_weights=body["weight"].astype(np.float64),
            relation_valid_from=body["valid_from"].astype(np.int64),
            relation_valid_to=body["valid_to"].astype(np.int64),
            relation_properties=relation_properties,
        )
