"""memory text search function: hybrid search's full-text half uses the GIN index

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 23:50:00

Hybrid memory search ranks the user's memories by meaning and by PostgreSQL full text. As the app
role, under row-level security, PostgreSQL may not use an index for a condition whose operator is
not leakproof before the policy's own condition has been checked, and ``@@`` is not: the GIN
index ``ix_memories_content_tsv`` was never used, and every search tested the query against each
of the user's memories. For a user with 100,000 memories that was 45-55 ms of a hybrid search
(a loaded 2-core machine), even for a word none of them holds.

``jarvis_memory_text_matches`` answers one question for the acting user only: their ``p_pool``
memories that best match the words typed (``websearch_to_tsquery('english', ...)``), with the
rank hybrid search uses (``ts_rank_cd`` normalised to [0, 1)). It is ``SECURITY DEFINER`` and
reads only rows whose ``user_id`` is ``jarvis_current_user_id()`` (the row-level security
policy's own rule, applied in the query); hybrid search then reads those memories by id as the app
role, under row-level security as before. Each call is planned for its arguments
(``force_custom_plan``): a rare word is best found through the index, a common one for a user
with few memories through their own rows.

The index helps when the function's owner is not itself held by row-level security (a
superuser, as the embedded PostgreSQL and the docker-compose database have, or a role with
BYPASSRLS); otherwise the answers are the same and as slow as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "jarvis_memory_text_matches(text, integer)"

MATCHES = """
CREATE FUNCTION jarvis_memory_text_matches(p_text text, p_pool integer)
RETURNS TABLE (id uuid, text_score real)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
SET plan_cache_mode = force_custom_plan
AS $fn$
    SELECT m.id, ts_rank_cd(m.content_tsv, q.tsq, 32)
    FROM public.memories m,
         (SELECT websearch_to_tsquery('english', p_text) AS tsq) q
    WHERE m.user_id = (SELECT public.jarvis_current_user_id()) AND m.content_tsv @@ q.tsq
    ORDER BY 2 DESC, m.id
    LIMIT p_pool
$fn$
"""


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def _q(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def upgrade() -> None:
    op.execute(MATCHES)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {_q(_app_role())}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
