"""refresh tokens remember when the browser confirmed it holds them

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 02:00:00

A refresh rotates the cookie, and the browser stores the new one a moment later. Until it
acknowledges (``confirmed_at``), presenting the previous token again within a short grace is a
reload race, not theft: the session gets another successor instead of being revoked.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "refresh_tokens", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("refresh_tokens", "confirmed_at")
