"""accounts: per-account lockout state for sign-in throttling

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_lockouts",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lockouts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    # Keyed by login name: only the auth scope (sign-in) may read or write it.
    op.execute("ALTER TABLE account_lockouts ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE account_lockouts FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY account_lockouts_auth ON account_lockouts "
        "USING (jarvis_scope() = 'auth') WITH CHECK (jarvis_scope() = 'auth')"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS account_lockouts_auth ON account_lockouts")
    op.drop_table("account_lockouts")
