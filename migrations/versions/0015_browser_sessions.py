"""browser sessions: an HttpOnly cookie holding a server-side token; no refresh grace

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00

A browser no longer holds a refresh token. After sign-in the page asks for a one-time
*ticket* (60 s, single use); the browser redeems it at ``POST /api/v1/auth/browser/session``,
whose response sets the HttpOnly cookie with a fresh *browser token*. Both live in
``browser_credentials``, only as SHA-256 hashes, bound to the session (the refresh-token
family): the token works while that session does, so logout, sign-out-everywhere, revocation
and deactivation end it with the family. It is not rotated per page load (reloads and tabs
never race), only replaced at sign-in and when the user's role changes.

Before the caller is known, a ticket or a token names its user through one narrow definer
function each (``jarvis_browser_ticket_user``, ``jarvis_browser_token_user``); everything else
runs as that user under row-level security.

With no browser reload races left, refresh tokens need no grace window and no cookie
acknowledgement: ``refresh_tokens.confirmed_at`` (0009) is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


_DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public"

FUNCTIONS: tuple[tuple[str, str], ...] = (
    (
        "jarvis_browser_ticket_user(p_hash text)",
        f"""RETURNS uuid LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT b.user_id FROM public.browser_credentials b WHERE b.ticket_hash = p_hash $$""",
    ),
    (
        "jarvis_browser_token_user(p_hash text)",
        f"""RETURNS uuid LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT b.user_id FROM public.browser_credentials b WHERE b.token_hash = p_hash $$""",
    ),
)


def upgrade() -> None:
    op.create_table(
        "browser_credentials",
        sa.Column(
            "id", postgresql.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("user_id", postgresql.UUID(), nullable=False),
        sa.Column("session_id", postgresql.UUID(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("ticket_hash", sa.String(length=64), nullable=True),
        sa.Column("ticket_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_hash", name="uq_browser_credentials_ticket_hash"),
        sa.UniqueConstraint("token_hash", name="uq_browser_credentials_token_hash"),
    )
    op.create_index(
        "ix_browser_credentials_user_id_session_id",
        "browser_credentials",
        ["user_id", "session_id"],
    )
    role = _app_role()
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON browser_credentials TO "{role}"')
    op.execute("ALTER TABLE browser_credentials ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE browser_credentials FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY browser_credentials_owner ON browser_credentials "
        "USING (user_id = jarvis_current_user_id()) WITH CHECK (user_id = jarvis_current_user_id())"
    )
    # The owner's lookup functions read any user's row (never the app role).
    op.execute(
        "CREATE POLICY browser_credentials_owner_lookup ON browser_credentials "
        "TO CURRENT_USER USING (true)"
    )
    for signature, body in FUNCTIONS:
        op.execute(f"CREATE FUNCTION {signature} {body}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f'GRANT EXECUTE ON FUNCTION {signature} TO "{role}"')
    op.drop_column("refresh_tokens", "confirmed_at")


def downgrade() -> None:
    op.add_column(
        "refresh_tokens", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True)
    )
    for signature, _body in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.drop_table("browser_credentials")
