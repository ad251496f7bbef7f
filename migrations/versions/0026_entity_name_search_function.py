"""entity name search function: finding a user's entities by name uses the trigram index

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 23:45:00

Searching a user's entities by name (the graph explorer's search box, ``GET /graph/entities?q=``,
the agent's graph tools) matched names with ``ILIKE`` and pg_trgm's ``%``. As the app role,
under row-level security, PostgreSQL may not use an index for a condition whose operator is not
leakproof before the policy's own condition has been checked, and neither ``ILIKE`` nor ``%``
is: the trigram index ``ix_kg_entities_name_trgm`` was never used, and every search computed
both for every one of the user's entities. For a user with 100,000 entities a search took
0.7-1.1 s on a loaded 2-core machine; the same statement able to use the index, 5-26 ms.

``jarvis_kg_name_matches`` answers one question for the acting user only: the ids of their
entities whose name matches, best first (exact name, then prefix, then trigram similarity, then
name), at most ``p_limit``. It is ``SECURITY DEFINER`` and reads only rows whose ``user_id`` is
``jarvis_current_user_id()`` (the row-level security policy's own rule, applied in the query),
so it shows nobody anything the policy would not; the repository then reads those entities by
id as the app role, under row-level security as before.

Each call is planned for its arguments (``force_custom_plan``): whether the trigram index or
the user's own rows is the cheaper way in depends on how common the typed text is and on how
many entities the user has, which one plan for every call could not know.

The index helps when the function's owner is not itself held by row-level security: a
superuser (the embedded PostgreSQL, the docker-compose database) or a role with BYPASSRLS. An
owner that is neither is held by the forced policy inside the function too: the answers are the
same, as slow as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "jarvis_kg_name_matches(text, text, text, integer)"

# p_query: the text typed; p_pattern: '%<it, LIKE-escaped>%'; p_prefix: '<it lower-cased,
# LIKE-escaped>%' (the repository makes both).
MATCHES = """
CREATE FUNCTION jarvis_kg_name_matches(
    p_query text, p_pattern text, p_prefix text, p_limit integer
) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
SET plan_cache_mode = force_custom_plan
AS $fn$
    SELECT e.id
    FROM public.kg_entities e
    WHERE e.user_id = (SELECT public.jarvis_current_user_id())
      AND (e.name ILIKE p_pattern ESCAPE '\\' OR e.name % p_query)
    ORDER BY lower(e.name) = lower(p_query) DESC,
             lower(e.name) LIKE p_prefix ESCAPE '\\' DESC,
             similarity(e.name, p_query) DESC,
             e.name
    LIMIT p_limit
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
