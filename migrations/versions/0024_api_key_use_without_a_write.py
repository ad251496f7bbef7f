"""api key use without a write: one read per request, the key's last use recorded once a minute

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 21:15:00

``jarvis_api_key_user`` (0014) found a request's key with an ``UPDATE`` that set
``last_used_at`` to itself unless a minute had passed: a new row version, and a commit that
waits for the disk, on every request made with a key. Then a second transaction read the user
as that user. Authenticating took 4.3 ms on a 2-core machine (a transaction that only reads:
~1 ms).

Now the function reads the key and writes only when the recorded use is over a minute old (the
repository lets that rare commit return before the disk has it: a last-use time lost in a crash
is the previous one, a minute older), and it returns what the request needs of the key's own
user (email, role, display name) with the ids: one transaction. Same answers otherwise: a live
key of an active user, or nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import context, op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "jarvis_api_key_user(text, timestamptz)"

LOOKUP = """
CREATE FUNCTION jarvis_api_key_user(p_hash text, p_now timestamptz)
RETURNS TABLE (key_id uuid, user_id uuid, email text, role text, display_name text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
  v_last timestamptz;
BEGIN
  SELECT k.id, k.user_id, u.email, u.role, u.display_name, k.last_used_at
    INTO key_id, user_id, email, role, display_name, v_last
    FROM public.api_keys k JOIN public.users u ON u.id = k.user_id
   WHERE k.key_hash = p_hash AND u.is_active
     AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > p_now);
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF v_last IS NULL OR v_last < p_now - interval '1 minute' THEN
    UPDATE public.api_keys k SET last_used_at = p_now WHERE k.id = key_id;
  END IF;
  RETURN NEXT;
END
$$
"""


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def _replace(definition: str) -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    op.execute(definition)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION {SIGNATURE} TO "{_app_role()}"')


def _previous_lookup() -> str:
    """0014's function, read from that migration (the one place its text lives)."""
    path = Path(__file__).with_name("0014_api_keys.py")
    spec = importlib.util.spec_from_file_location("jarvis_migration_0014", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.LOOKUP)


def upgrade() -> None:
    _replace(LOOKUP)


def downgrade() -> None:
    _replace(_previous_lookup())
