"""relation end names: each relation carries its ends' names, and the walk reads a level by name

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 07:00:00

A capped neighbourhood keeps the nearest nodes by depth, then name. When a level overflows the
cap (a hub's 8,674 neighbours for a cap of 500) the walk read the whole level and looked every
name up to keep the first ones: most of the time of a capped neighbourhood.

* ``kg_relations.source_name`` / ``target_name``: copies of the ends' names, set by a trigger
  when a relation is written (its ends' rows are share-locked while they are read, so a rename
  running at the same time waits, then updates the new relation too) and kept current by a
  trigger on every rename of an entity.
* The relation indexes hold the far end's name before its id: ``(source_id, target_name,
  target_id)`` and ``(target_id, source_name, source_id)``, with what the walk filters on. A node's
  neighbours come out of the index in name order, so a level's first ``cap + 1`` names are read
  and the rest never are. A probe for one pair gives the name too (the capped statement knows
  it; the service's duplicate check reads it from the entity).
* ``jarvis_kg_walk`` (no more scan factor): a capped level reads, for each frontier node, its
  first ``cap + 1`` distinct neighbours by (name, id) in index order, then keeps the level's first
  names that were not reached before. That is the whole level when it fits; when it does not,
  the first ``room`` are kept and the walk reports ``cap + 1`` nodes seen (truncated). Why the
  first ``cap + 1`` of each node are enough: the level's ``i``-th name is among the first ``i``
  of each node it neighbours, and the ``room + 1``-th name not reached before is at most the
  ``cap + 1``-th of the level. Uncapped walks are unchanged.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SIGNATURE = (
    "jarvis_kg_walk(uuid, integer, boolean, boolean, text[], timestamptz, integer, "
    "double precision)"
)
SIGNATURE = "jarvis_kg_walk(uuid, integer, boolean, boolean, text[], timestamptz, integer)"
INCLUDE = ["id", "user_id", "type", "valid_from", "valid_to"]

# The level when uncapped: every relation of the frontier, minus the nodes already reached.
_LEVEL_UNCAPPED = """
            SELECT coalesce(array_agg(x.n), '{}') INTO v_next FROM (
                SELECT r.target_id FROM unnest(v_frontier) f(id)
                JOIN kg_relations r ON r.source_id = f.id
                WHERE p_out AND (v_all_types OR r.type = ANY(p_types))
                  AND (p_as_of IS NULL OR ((r.valid_from IS NULL OR r.valid_from <= p_as_of)
                                           AND (r.valid_to IS NULL OR r.valid_to > p_as_of)))
                UNION ALL
                SELECT r.source_id FROM unnest(v_frontier) f(id)
                JOIN kg_relations r ON r.target_id = f.id
                WHERE p_in AND (v_all_types OR r.type = ANY(p_types))
                  AND (p_as_of IS NULL OR ((r.valid_from IS NULL OR r.valid_from <= p_as_of)
                                           AND (r.valid_to IS NULL OR r.valid_to > p_as_of)))
                EXCEPT
                SELECT unnest(v_seen)
            ) x(n);"""

# The level when capped: each frontier node's first cap + 1 neighbours in index (name) order.
_LEVEL_CAPPED = """
            v_room := p_limit - cardinality(v_seen);
            v_next := ARRAY(
                SELECT x.id FROM unnest(v_frontier) f(id)
                CROSS JOIN LATERAL (
                    (SELECT DISTINCT r.target_name AS name, r.target_id AS id
                     FROM kg_relations r
                     WHERE p_out AND r.source_id = f.id
                       AND (v_all_types OR r.type = ANY(p_types))
                       AND (p_as_of IS NULL OR ((r.valid_from IS NULL OR r.valid_from <= p_as_of)
                                                AND (r.valid_to IS NULL OR r.valid_to > p_as_of)))
                     ORDER BY 1, 2 LIMIT p_limit + 1)
                    UNION ALL
                    (SELECT DISTINCT r.source_name, r.source_id
                     FROM kg_relations r
                     WHERE p_in AND r.target_id = f.id
                       AND (v_all_types OR r.type = ANY(p_types))
                       AND (p_as_of IS NULL OR ((r.valid_from IS NULL OR r.valid_from <= p_as_of)
                                                AND (r.valid_to IS NULL OR r.valid_to > p_as_of)))
                     ORDER BY 1, 2 LIMIT p_limit + 1)
                ) x
                WHERE x.id NOT IN (SELECT unnest(v_seen))
                GROUP BY x.name, x.id
                ORDER BY x.name, x.id
                LIMIT v_room + 1);
            IF cardinality(v_next) > v_room THEN
                RETURN QUERY
                    SELECT u.node, u.depth, p_limit + 1 FROM unnest(v_seen, v_depths) u(node, depth)
                    UNION ALL
                    SELECT b.id, k, p_limit + 1 FROM unnest(v_next[1:v_room]) b(id);
                RETURN;
            END IF;"""

WALK = f"""
CREATE FUNCTION jarvis_kg_walk(
    p_root uuid, p_depth integer, p_out boolean, p_in boolean, p_types text[],
    p_as_of timestamptz, p_limit integer
) RETURNS TABLE (node uuid, depth integer, seen integer)
LANGUAGE plpgsql STABLE SECURITY INVOKER ROWS 500
SET search_path = public, pg_temp
AS $fn$
DECLARE
    v_all_types boolean := cardinality(p_types) = 0;
    v_seen uuid[];
    v_depths integer[];
    v_frontier uuid[];
    v_next uuid[];
    v_room integer;
BEGIN
    PERFORM FROM kg_entities e WHERE e.id = p_root;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_seen := ARRAY[p_root];
    v_depths := ARRAY[0];
    v_frontier := v_seen;
    FOR k IN 1..p_depth LOOP
        EXIT WHEN cardinality(v_frontier) = 0;
        IF p_limit IS NULL THEN{_LEVEL_UNCAPPED}
        ELSE{_LEVEL_CAPPED}
        END IF;
        v_seen := v_seen || v_next;
        v_depths := v_depths || array_fill(k, ARRAY[cardinality(v_next)]);
        v_frontier := v_next;
    END LOOP;
    RETURN QUERY
        SELECT u.node, u.depth, cardinality(v_seen) FROM unnest(v_seen, v_depths) u(node, depth);
END
$fn$
"""

# A relation's end names, read when it is written (SECURITY INVOKER: the writer sees only its
# own entities, so a relation to someone else's entity gets no name and is refused as NULL).
RELATION_NAMES = """
CREATE FUNCTION jarvis_kg_relation_names() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
    SELECT e.name INTO NEW.source_name FROM kg_entities e WHERE e.id = NEW.source_id FOR SHARE;
    SELECT e.name INTO NEW.target_name FROM kg_entities e WHERE e.id = NEW.target_id FOR SHARE;
    RETURN NEW;
END
$fn$
"""

# A renamed entity's relations follow (only the owner can rename it; its relations are its own).
ENTITY_RENAMED = """
CREATE FUNCTION jarvis_kg_entity_renamed() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = public, pg_temp
AS $fn$
BEGIN
    UPDATE kg_relations SET source_name = NEW.name WHERE source_id = NEW.id;
    UPDATE kg_relations SET target_name = NEW.name WHERE target_id = NEW.id;
    RETURN NULL;
END
$fn$
"""


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def _q(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def upgrade() -> None:
    op.add_column("kg_relations", sa.Column("source_name", sa.String(300), nullable=True))
    op.add_column("kg_relations", sa.Column("target_name", sa.String(300), nullable=True))
    op.execute(
        """
        UPDATE kg_relations r SET source_name = s.name, target_name = t.name
          FROM kg_entities s, kg_entities t
         WHERE s.id = r.source_id AND t.id = r.target_id
        """
    )
    op.alter_column("kg_relations", "source_name", nullable=False)
    op.alter_column("kg_relations", "target_name", nullable=False)
    op.execute(RELATION_NAMES)
    op.execute(
        "CREATE TRIGGER kg_relations_end_names BEFORE INSERT OR UPDATE OF source_id, target_id "
        "ON kg_relations FOR EACH ROW EXECUTE FUNCTION jarvis_kg_relation_names()"
    )
    op.execute(ENTITY_RENAMED)
    op.execute(
        "CREATE TRIGGER kg_entities_renamed AFTER UPDATE OF name ON kg_entities FOR EACH ROW "
        "WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION jarvis_kg_entity_renamed()"
    )
    op.drop_index("ix_kg_relations_source_id_target_id", table_name="kg_relations")
    op.drop_index("ix_kg_relations_target_id", table_name="kg_relations")
    op.create_index(
        "ix_kg_relations_source_id_target_name",
        "kg_relations",
        ["source_id", "target_name", "target_id"],
        postgresql_include=INCLUDE,
    )
    op.create_index(
        "ix_kg_relations_target_id_source_name",
        "kg_relations",
        ["target_id", "source_name", "source_id"],
        postgresql_include=INCLUDE,
    )
    op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
    op.execute(WALK)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {_q(_app_role())}")


def _previous_walk() -> str:
    """0017's function, read from that migration (the one place its text lives)."""
    path = Path(__file__).with_name("0017_graph_walk.py")
    spec = importlib.util.spec_from_file_location("jarvis_migration_0017", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.WALK)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    op.execute(_previous_walk())
    op.execute(f"REVOKE ALL ON FUNCTION {OLD_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {OLD_SIGNATURE} TO {_q(_app_role())}")
    op.drop_index("ix_kg_relations_target_id_source_name", table_name="kg_relations")
    op.drop_index("ix_kg_relations_source_id_target_name", table_name="kg_relations")
    op.create_index(
        "ix_kg_relations_source_id_target_id",
        "kg_relations",
        ["source_id", "target_id"],
        postgresql_include=INCLUDE,
    )
    op.create_index(
        "ix_kg_relations_target_id",
        "kg_relations",
        ["target_id"],
        postgresql_include=["source_id", *INCLUDE],
    )
    op.execute("DROP TRIGGER kg_entities_renamed ON kg_entities")
    op.execute("DROP FUNCTION jarvis_kg_entity_renamed()")
    op.execute("DROP TRIGGER kg_relations_end_names ON kg_relations")
    op.execute("DROP FUNCTION jarvis_kg_relation_names()")
    op.drop_column("kg_relations", "target_name")
    op.drop_column("kg_relations", "source_name")
