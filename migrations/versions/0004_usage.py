"""usage: daily rollups (runs, tool calls) with RLS, admin recent-runs index, seed prices

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-26 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUPS = ("usage_daily", "tool_usage_daily")


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unpriced_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost", sa.Numeric(precision=18, scale=6), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "day", "provider", "model"),
    )
    op.create_index("ix_usage_daily_day", "usage_daily", ["day"], unique=False)
    op.create_table(
        "tool_usage_daily",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tool_id", sa.String(length=100), nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("denied", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_ms_sum", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("latency_ms_max", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "day", "tool_id"),
    )
    op.create_index("ix_tool_usage_daily_day", "tool_usage_daily", ["day"], unique=False)
    op.create_index("ix_agent_runs_started_at", "agent_runs", ["started_at"], unique=False)

    # Same rules as the runs they summarise: the owner reads and writes its rows (the run's own
    # transaction keeps them current); admins read everyone's. The functions are wrapped in
    # scalar sub-selects so PostgreSQL evaluates them once per query (an InitPlan), not once per
    # row: 3x faster for an admin's 30-day aggregate over ~50k rollup rows (see the benchmark).
    for table in ROLLUPS:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_owner ON {table} "
            "USING (user_id = (SELECT jarvis_current_user_id())) "
            "WITH CHECK (user_id = (SELECT jarvis_current_user_id()))"
        )
        op.execute(
            f"CREATE POLICY {table}_admin_read ON {table} FOR SELECT "
            "USING ((SELECT jarvis_is_admin()))"
        )

    # Seed prices from the package data file (idempotent; never overwrites a version).
    from jarvis.db.repositories.pricing import seed_prices
    from jarvis.services.pricing import load_price_file

    seed_prices(op.get_bind(), load_price_file())


def downgrade() -> None:
    op.drop_index("ix_agent_runs_started_at", table_name="agent_runs")
    op.drop_index("ix_tool_usage_daily_day", table_name="tool_usage_daily")
    op.drop_table("tool_usage_daily")
    op.drop_index("ix_usage_daily_day", table_name="usage_daily")
    op.drop_table("usage_daily")
