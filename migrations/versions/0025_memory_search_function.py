"""memory search function: the exact per-user search, planned once per connection

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 23:30:00

The exact search (``MemoryRepository.semantic`` without the user's own HNSW index) was one
statement sent with every search and planned every time: psycopg forgets its prepared
statements at every ``ROLLBACK``, and a unit of work that only reads ends with one. Planning
it took ~0.5 ms of a 5.6-7 ms search on a loaded 2-core machine (a user with 10,000 memories
in 1,000,000 rows), most of the gap to issue 16's 3 ms on an idle one.

``jarvis_memory_nearest`` is that statement as a SQL function. PostgreSQL 18 keeps a SQL
function's plan for the session, and ``plan_cache_mode = force_generic_plan`` makes it one plan
for every argument, built on the connection's first call; its ``SET`` options also keep the
function from being inlined into (and planned with) the calling statement. The plan does not
depend on the arguments: the user's rows of one model are one range of the covering index
``(user_id, embedding_model) INCLUDE (id, embedding)``, read index-only, twice (the first
``EXACT_SAMPLE`` rows bound the k-th best distance; then every row, only those within the bound
sorted), and the k rows found are read by key. A heavy user's own partial HNSW index is not
this function's business: that search names the user and model as literals so the planner can
prove the partial index applies, and stays a statement.

SECURITY INVOKER: row-level security applies inside it as the app's role, checked when the plan
runs (a user asking for someone else's memories gets none, however often the plan was reused).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "jarvis_memory_nearest(uuid, text, halfvec, integer, double precision)"

# Rows of the user whose k-th best distance bounds the scan: 100, 300 and 1,000 all cut the
# sort; 300 measured best at 10,000 rows (the repository's EXACT_SAMPLE when this was written).
_SAMPLE = 300

# The bound: the k-th best distance among the first _SAMPLE rows is at least the true k-th best
# (those rows are k candidates), so every row of the true top k (ties included) passes
# ``distance <= bound``. A NULL embedding's distance is NULL and a zero vector's NaN: neither
# passes the outer filter, and a NaN bound (fewer than k comparable rows) lets every row through.
NEAREST = f"""
CREATE FUNCTION jarvis_memory_nearest(
    p_user uuid, p_model text, p_query halfvec, p_k integer, p_min_score double precision
) RETURNS TABLE (
    id uuid, content text, embedding_model varchar, metadata jsonb, source varchar,
    created_at timestamptz, score double precision
)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
WITH sample AS (
    SELECT embedding <=> p_query AS distance
    FROM memories
    WHERE user_id = p_user AND embedding_model = p_model
    LIMIT {_SAMPLE}
),
bound AS (
    SELECT distance FROM sample ORDER BY distance LIMIT 1 OFFSET p_k - 1
),
top AS (
    SELECT id, embedding <=> p_query AS distance
    FROM memories
    WHERE user_id = p_user AND embedding_model = p_model
          AND (embedding <=> p_query) <= coalesce((SELECT distance FROM bound), 'Infinity')
    ORDER BY 2, id
    LIMIT p_k
)
SELECT m.id, m.content, m.embedding_model, m.metadata, m.source, m.created_at,
       1 - top.distance AS score
FROM top JOIN memories m ON m.id = top.id
WHERE top.distance <> 'NaN'::float8 AND 1 - top.distance >= p_min_score
ORDER BY top.distance, m.id
$fn$
"""


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def _q(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def upgrade() -> None:
    op.execute(NEAREST)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {_q(_app_role())}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
