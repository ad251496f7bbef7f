"""graph neighbourhood function: the capped neighbourhood's statement, planned once per connection

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 21:00:00

The capped neighbourhood was one statement sent on every request and planned every time: 1.6 ms
of planning (on a 2-core machine) for 17-20 ms around a hub, and most of the time of a small
neighbourhood (3.7 ms, of which under 1 ms was running it). ``jarvis_kg_neighbourhood`` is that
statement as a SQL function. PostgreSQL 18 keeps a SQL function's plan for the session, and
``plan_cache_mode = force_generic_plan`` makes it one plan for every argument, built on the
connection's first call. The plan's shape does not depend on the arguments: every level and
every lookup is fenced (``MATERIALIZED``, ``OFFSET 0``, ``LIMIT``) and reads by key or by index
range. Over 324 neighbourhoods (random roots, busy nodes, a leaf; depth 1-3; every direction;
with and without type and date filters; caps 50-2,000) the generic plan gave the same rows in
75 % of the time of the statement planned for its arguments: small ones 4x faster, none more
than 1.08x slower. (The generic plan of an earlier form of the statement, kept through
psycopg's prepared statements, was rejected on 2026-12-03: 262-341 ms at cap 2,000 against
42 ms; this form was measured on its own, `benchmarks/graph_plan_bench.py`.)

The statement:

* ``walk``: ``jarvis_kg_walk`` (0017, 0022) returns the kept nodes, their depth and how many
  were reached (``cap + 1`` when the cap cut a level).
* ``named``: each kept node's row, by key.
* Relations among the kept nodes, each found once, from its source or from its target:

  - When the cap cut the deepest level, that level is most of the nodes and its first names
    only: a narrow range ``[lo, hi]``. A kept node's relations to the nodes named within it are
    one short range of its ``(source_id, target_name, target_id)`` index (a busy node's other
    relations are never read).
  - Every other kept node (all of them when nothing was cut) reads its relations from the
    others in its incoming index, up to ``_CROWDED`` of them. Reading them from the sources
    read every relation of every busy source kept: 52,766 index entries for the 76 relations
    among 55 nodes walked against the direction from a busy node (33 ms; now 2.7 ms).
  - A node with more relations than that (a popular target) has its relations found from the
    kept sources instead, each source's index read at the popular targets' names only.

  One hash of the kept nodes checks the other end; the relations found are fetched by key.
  When the walk follows relations out of the root, the root's (all to depth 1, whose first
  names were often all that was kept) are one range of its index, read and fetched in order,
  and its relation to itself is one probe; otherwise the root is a source like the others.
* The result is one row: ``seen``, and the nodes and the relations as two JSON arrays of
  arrays of fields (text made by ``format()`` from each value's JSON text), parsed in one call
  each by the repository.

SECURITY INVOKER: row-level security applies to every statement in it, as the app's role.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "jarvis_kg_neighbourhood(uuid, integer, boolean, boolean, text[], timestamptz, integer, "
    "integer)"
)

# Which relations the walk follows and returns (no types: every type; a date: valid then).
_FILTER = """
    (cardinality(p_types) = 0 OR r.type = ANY(p_types))
    AND (p_as_of IS NULL OR ((r.valid_from IS NULL OR r.valid_from <= p_as_of)
                             AND (r.valid_to IS NULL OR r.valid_to > p_as_of)))"""

# A kept node with more relations to it than this has them found from their sources (each
# kept source's index read at these nodes' names) instead of reading them all.
_CROWDED = 64

# The kept nodes the root's relations reach when the walk follows them (or the root itself).
_ENDS = "named WHERE depth = 1"

# A relation's fields (its ends' names included) as a JSON array; a float's NaN and
# infinities are strings in JSON.
_RELATION_ARRAY = """format('["%s", "%s", %s, %s, "%s", %s, %s, %s, %s, %s]',
        r.id, r.source_id, to_json(r.source_name), to_json(r.type), r.target_id,
        to_json(r.target_name),
        CASE WHEN r.weight IN ('NaN', 'Infinity', '-Infinity') THEN to_json(r.weight)::text
             ELSE r.weight::text END,
        coalesce(to_json(r.valid_from)::text, 'null'), coalesce(to_json(r.valid_to)::text, 'null'),
        r.properties)"""

NEIGHBOURHOOD = f"""
CREATE FUNCTION jarvis_kg_neighbourhood(
    p_root uuid, p_depth integer, p_out boolean, p_in boolean, p_types text[],
    p_as_of timestamptz, p_node_limit integer, p_edge_limit integer
) RETURNS TABLE (seen integer, nodes text, edges text)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
WITH walk AS MATERIALIZED (
    SELECT k.node, k.depth, k.seen
    FROM jarvis_kg_walk(p_root, p_depth, p_out, p_in, p_types, p_as_of, p_node_limit) k
),
named AS MATERIALIZED (
    SELECT e.id, e.name, e.type, e.description, e.properties, k.depth FROM walk k
    CROSS JOIN LATERAL (SELECT * FROM kg_entities e WHERE e.id = k.node OFFSET 0) e
),
deepest AS MATERIALIZED (
    SELECT min(name) AS lo, max(name) AS hi FROM named
    WHERE depth = (SELECT max(depth) FROM named)
      AND (SELECT max(seen) FROM walk) > p_node_limit
),
in_side AS MATERIALIZED (
    SELECT t.id AS target_id, x.id, x.source_id FROM named t
    CROSS JOIN LATERAL (
        SELECT r.id, r.source_id FROM kg_relations r
        WHERE r.target_id = t.id AND (r.source_id <> p_root OR NOT p_out) AND {_FILTER}
        LIMIT {_CROWDED + 1}) x
    WHERE (SELECT lo FROM deepest) IS NULL
       OR t.name NOT BETWEEN (SELECT lo FROM deepest) AND (SELECT hi FROM deepest)
),
crowded AS MATERIALIZED (
    SELECT target_id FROM in_side GROUP BY target_id HAVING count(*) > {_CROWDED}
),
pairs AS MATERIALIZED (
    SELECT id FROM (
        SELECT x.id FROM named s
        CROSS JOIN LATERAL (
            SELECT r.id, r.target_id FROM kg_relations r
            WHERE r.source_id = s.id
              AND r.target_name BETWEEN (SELECT lo FROM deepest) AND (SELECT hi FROM deepest)
              AND {_FILTER}
            OFFSET 0) x
        JOIN named t ON t.id = x.target_id
        WHERE (SELECT lo FROM deepest) IS NOT NULL AND (s.id <> p_root OR NOT p_out)
        UNION ALL
        SELECT i.id FROM in_side i JOIN named s ON s.id = i.source_id
        WHERE i.target_id NOT IN (SELECT target_id FROM crowded)
        UNION ALL
        SELECT x.id FROM named s
        CROSS JOIN LATERAL (
            SELECT r.id, r.target_id FROM kg_relations r
            WHERE r.source_id = s.id
              AND r.target_name = ANY(ARRAY(
                  SELECT t.name FROM crowded c JOIN named t ON t.id = c.target_id))
              AND {_FILTER}
            OFFSET 0) x
        JOIN crowded c ON c.target_id = x.target_id
        WHERE EXISTS (SELECT FROM crowded) AND (s.id <> p_root OR NOT p_out)
        UNION ALL
        SELECT r.id FROM named t JOIN kg_relations r
          ON r.source_id = t.id AND r.target_name = t.name AND r.target_id = t.id
        WHERE t.id = p_root AND p_out AND {_FILTER}
    ) u
    LIMIT p_edge_limit
),
root_rows AS MATERIALIZED (
    SELECT r.* FROM kg_relations r
    WHERE p_out AND r.source_id = p_root
      AND r.target_name BETWEEN (SELECT min(name) FROM {_ENDS}) AND (SELECT max(name) FROM {_ENDS})
      AND {_FILTER}
      AND r.target_id <> p_root AND r.target_id IN (SELECT id FROM named)
    LIMIT p_edge_limit
),
edge_rows AS (
    SELECT * FROM root_rows
    UNION ALL
    SELECT r.* FROM pairs p
    CROSS JOIN LATERAL (SELECT * FROM kg_relations r WHERE r.id = p.id OFFSET 0) r
    LIMIT p_edge_limit
)
SELECT
    coalesce((SELECT max(w.seen) FROM walk w), 0) AS seen,
    (SELECT '[' || coalesce(string_agg(
        format('["%s", %s, %s, %s, %s, %s]', n.id, to_json(n.name), to_json(n.type),
               to_json(n.description), n.depth, n.properties),
        ',' ORDER BY n.depth, n.name, n.id), '') || ']'
     FROM named n) AS nodes,
    (SELECT '[' || coalesce(string_agg({_RELATION_ARRAY}, ','), '') || ']' FROM edge_rows r)
        AS edges
$fn$
"""


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def _q(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def upgrade() -> None:
    op.execute(NEIGHBOURHOOD)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {_q(_app_role())}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
