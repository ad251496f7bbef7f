"""entity name search in tiers: names that start with the text first, the others when needed

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 02:45:00

``jarvis_kg_name_matches`` (0026) ranked every entity that matched: exact name first, then
names that start with the text, then by trigram similarity, then by name, and kept the first
``p_limit``. To rank them it computed ``similarity()`` for each match (~5-8 us a name on a
2-core machine), so text that many names share cost the same as ranking all of them: for a user
with 100,000 entities, "Entity 0" (6,417 names start with it, 100,000 share its trigrams)
took 0.8 s for 20 results.

The ranking is the same, now taken in two tiers: the names that start with the text (the exact
ones first; ``ILIKE`` through the trigram index), then the other matches (substring or trigram),
each tier ranked by similarity, then name. The tiers are appended in that order under one
``LIMIT``: PostgreSQL stops reading once it has ``p_limit`` ids, so when the names that start
with the text fill the page the other matches are never ranked (the second tier is not
started). Measured on the graph benchmark's data (100k entities named "entity <32 hex>"; 20
results; a loaded 2-core machine; the same ids both ways): "ENTITY 0" 789 -> 66 ms; a full
name 25 -> 31 ms, a 6-letter fragment 4.3 -> 4.9 ms, a miss 2.7 -> 3.2 ms (the prefix is
looked up too); text that no name starts with ranks all its matches as before ("a", "ab":
0.67-0.79 s either way, 13 % slower for "ab", which both tiers read in full). With real names,
a short text is what many names start with, and the first tier is what fills the page.

``tests/integration/test_knowledge_graph.py`` holds the function to 0026's single ``ORDER BY``
over generated names and queries (cases, LIKE's special characters, every tier).

Same signature, same grants, same guarantees: ``SECURITY DEFINER``, and every tier reads only
the acting user's rows (``user_id = jarvis_current_user_id()``, the policy's own rule).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# p_query: the text typed; p_pattern: '%<it, LIKE-escaped>%'; p_prefix: '<it lower-cased,
# LIKE-escaped>%' (the repository makes both). ``name ILIKE p_prefix`` is 0026's
# ``lower(name) LIKE p_prefix`` (ILIKE lower-cases both sides) in a form the trigram index
# serves. A name equal to the text (ignoring case) starts with it, and one that starts with it
# contains it: the second tier excludes the first and needs no other test.
MATCHES = """
CREATE OR REPLACE FUNCTION jarvis_kg_name_matches(
    p_query text, p_pattern text, p_prefix text, p_limit integer
) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
SET plan_cache_mode = force_custom_plan
AS $fn$
    (SELECT e.id FROM public.kg_entities e
     WHERE e.user_id = (SELECT public.jarvis_current_user_id())
       AND e.name ILIKE p_prefix ESCAPE '\\'
     ORDER BY lower(e.name) = lower(p_query) DESC, similarity(e.name, p_query) DESC, e.name
     LIMIT p_limit)
    UNION ALL
    (SELECT e.id FROM public.kg_entities e
     WHERE e.user_id = (SELECT public.jarvis_current_user_id())
       AND (e.name ILIKE p_pattern ESCAPE '\\' OR e.name % p_query)
       AND NOT e.name ILIKE p_prefix ESCAPE '\\'
     ORDER BY similarity(e.name, p_query) DESC, e.name
     LIMIT p_limit)
    LIMIT p_limit
$fn$
"""


def _previous_matches() -> str:
    """0026's function, read from that migration (the one place its text lives)."""
    path = Path(__file__).with_name("0026_entity_name_search_function.py")
    spec = importlib.util.spec_from_file_location("jarvis_migration_0026", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.MATCHES).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    op.execute(MATCHES)


def downgrade() -> None:
    op.execute(_previous_matches())
