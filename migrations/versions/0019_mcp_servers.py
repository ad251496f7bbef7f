"""MCP servers: admin-registered Model Context Protocol servers and their discovered tools

Revision ID: 0019
Revises: 0015
Create Date: 2026-12-02 18:00:00

``mcp_servers`` holds what an administrator typed: a name (the tools are ``name.tool``), the
transport (``stdio``: a command and its arguments; ``http``: a streamable-HTTP URL), which
header (http) or environment variable (stdio) carries the *calling user's* own vault secret of
a provider, whether the server is enabled, the default permission of its tools (denied until a
user allows them, unless the admin says otherwise), the call timeout and the result bound.
No secret value is ever stored here: only provider names. ``mcp_tools`` caches what discovery
(``tools/list``) returned, per server.

Like ``model_prices``, both are instance-wide: every app-role session may read them (the tool
list every user sees), only a verified administrator (``jarvis_is_admin()``) may write them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("mcp_servers", "mcp_tools")


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column(
            "id", postgresql.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("command", sa.Text(), nullable=True),
        sa.Column(
            "args", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column(
            "headers", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("env", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("default_allowed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), server_default="20", nullable=False),
        sa.Column("max_result_bytes", sa.Integer(), server_default="16384", nullable=False),
        sa.Column("discovery_error", sa.Text(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name="uq_mcp_servers_name"),
        sa.CheckConstraint("name ~ '^[a-z][a-z0-9_-]{0,31}$'", name="ck_mcp_servers_name"),
        sa.CheckConstraint(
            "(transport = 'stdio' AND command IS NOT NULL AND url IS NULL)"
            " OR (transport = 'http' AND url IS NOT NULL AND command IS NULL)",
            name="ck_mcp_servers_transport",
        ),
        sa.CheckConstraint(
            "timeout_seconds BETWEEN 1 AND 300", name="ck_mcp_servers_timeout_seconds"
        ),
        sa.CheckConstraint(
            "max_result_bytes BETWEEN 256 AND 1000000", name="ck_mcp_servers_max_result_bytes"
        ),
    )
    op.create_table(
        "mcp_tools",
        sa.Column("server_id", postgresql.UUID(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("input_schema", postgresql.JSONB(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["mcp_servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id", "name"),
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING (true)")
        op.execute(
            f"CREATE POLICY {table}_admin_write ON {table} FOR ALL "
            "USING ((SELECT jarvis_is_admin())) WITH CHECK ((SELECT jarvis_is_admin()))"
        )
        # The owner (migrations, maintenance) is forced too: it needs a policy of its own.
        op.execute(
            f"CREATE POLICY {table}_owner_write ON {table} FOR ALL TO CURRENT_USER "
            "USING (true) WITH CHECK (true)"
        )


def downgrade() -> None:
    op.drop_table("mcp_tools")
    op.drop_table("mcp_servers")
