"""graph walk: one plpgsql function per capped neighbourhood; the graph policies read the user once

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-02 18:00:00

* ``jarvis_kg_walk`` (SECURITY INVOKER: row-level security applies to every statement in it)
  walks the capped neighbourhood level by level. A level is the frontier's relations (one index
  range per frontier node, index only) minus the nodes already reached, an ``EXCEPT`` (a hashed
  set operation whatever the estimates, never an array scanned per candidate). The walk stops at
  the first level that overflows the cap; of that level it keeps the first names, read from the
  name index (``(user_id, name, id)``) with a hashed membership test when the level is large,
  looked up by key when it is small. It returns the kept nodes with their depth and how many
  nodes were reached (more than the cap: the result is truncated). The statement that calls it
  reads the nodes' rows and the relations among them.
* The owner policies of ``kg_entities`` and ``kg_relations`` compare ``user_id`` with
  ``(SELECT jarvis_current_user_id())``: an init plan evaluated once per statement, where the
  bare call was evaluated for every row (``current_setting`` and a text-to-uuid cast per index
  entry: a hub's 9,000 relations cost 3x as much to read as the app role as without
  row-level security). Same rows, same users.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "jarvis_kg_walk(uuid, integer, boolean, boolean, text[], timestamptz, integer, "
    "double precision)"
)

WALK = """
CREATE OR REPLACE FUNCTION jarvis_kg_walk(
    p_root uuid, p_depth integer, p_out boolean, p_in boolean, p_types text[],
    p_as_of timestamptz, p_limit integer, p_scan_factor double precision
) RETURNS TABLE (node uuid, depth integer, seen integer)
LANGUAGE plpgsql STABLE SECURITY INVOKER ROWS 500
SET search_path = public, pg_temp
AS $fn$
DECLARE
    v_user uuid;
    v_all_types boolean := cardinality(p_types) = 0;
    v_seen uuid[];
    v_depths integer[];
    v_frontier uuid[];
    v_next uuid[];
    v_room integer;
    v_total integer;
BEGIN
    SELECT e.user_id INTO v_user FROM kg_entities e WHERE e.id = p_root;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_seen := ARRAY[p_root];
    v_depths := ARRAY[0];
    v_frontier := v_seen;
    FOR k IN 1..p_depth LOOP
        EXIT WHEN cardinality(v_frontier) = 0;
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
        ) x(n);
        v_total := cardinality(v_seen) + cardinality(v_next);
        IF v_total > p_limit THEN  -- never when p_limit is NULL (uncapped)
            v_room := p_limit - cardinality(v_seen);
            IF v_room::double precision * (SELECT greatest(c.reltuples, 1) FROM pg_class c
                                             WHERE c.oid = 'kg_entities'::regclass)
                   < p_scan_factor * cardinality(v_next)::double precision * cardinality(v_next) THEN
                v_next := ARRAY(
                    SELECT e.id FROM kg_entities e
                    WHERE e.user_id = v_user
                      AND (e.id IN (SELECT unnest(v_next))) IS TRUE
                    ORDER BY e.name, e.id LIMIT v_room);
            ELSE
                v_next := ARRAY(
                    SELECT e.id FROM unnest(v_next) b(id) JOIN kg_entities e ON e.id = b.id
                    ORDER BY e.name, e.id LIMIT v_room);
            END IF;
            RETURN QUERY
                SELECT u.node, u.depth, v_total FROM unnest(v_seen, v_depths) u(node, depth)
                UNION ALL
                SELECT b.id, k, v_total FROM unnest(v_next) b(id);
            RETURN;
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

TABLES = ("kg_entities", "kg_relations")


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def _q(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def _owner_policy(table: str, user: str) -> str:
    return f"ALTER POLICY {table}_owner ON {table} USING (user_id = {user}) WITH CHECK (user_id = {user})"


def upgrade() -> None:
    op.execute(WALK)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {_q(_app_role())}")
    for table in TABLES:
        op.execute(_owner_policy(table, "(SELECT jarvis_current_user_id())"))


def downgrade() -> None:
    for table in TABLES:
        op.execute(_owner_policy(table, "jarvis_current_user_id()"))
    op.execute(f"DROP FUNCTION {SIGNATURE}")
