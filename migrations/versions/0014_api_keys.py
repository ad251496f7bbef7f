"""personal API keys: hashed, revocable, optional expiry; looked up by a narrow function

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 14:00:00

A key is shown once; only its SHA-256 is stored. Before the caller is known the key must be
found by its hash across users: ``jarvis_api_key_user`` (SECURITY DEFINER, owner's rights) does
only that — a live key of an active user, its last use recorded — and returns the ids, nothing
else. Everything after runs as that user under row-level security.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


LOOKUP = """
CREATE FUNCTION jarvis_api_key_user(p_hash text, p_now timestamptz)
RETURNS TABLE (key_id uuid, user_id uuid)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
BEGIN
  RETURN QUERY
  UPDATE public.api_keys k
     SET last_used_at = CASE
           WHEN k.last_used_at IS NULL OR k.last_used_at < p_now - interval '1 minute' THEN p_now
           ELSE k.last_used_at END
    FROM public.users u
   WHERE k.key_hash = p_hash AND u.id = k.user_id AND u.is_active
     AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > p_now)
  RETURNING k.id, k.user_id;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column(
            "id", postgresql.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("user_id", postgresql.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_user_id_created_at", "api_keys", ["user_id", "created_at"])
    role = _app_role()
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO "{role}"')
    op.execute("ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE api_keys FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY api_keys_owner ON api_keys "
        "USING (user_id = jarvis_current_user_id()) WITH CHECK (user_id = jarvis_current_user_id())"
    )
    # The owner's lookup function reads and touches any user's key (never the app role).
    op.execute(
        "CREATE POLICY api_keys_owner_lookup ON api_keys TO CURRENT_USER USING (true) WITH CHECK (true)"
    )
    op.execute(LOOKUP)
    op.execute("REVOKE ALL ON FUNCTION jarvis_api_key_user(text, timestamptz) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION jarvis_api_key_user(text, timestamptz) TO "{role}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS jarvis_api_key_user(text, timestamptz)")
    op.drop_table("api_keys")
