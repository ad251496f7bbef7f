"""chat: run heartbeat and the stale-run recovery function

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 00:40:00

Runs left ``running`` by a dead process must become ``failed`` at start-up. The app role cannot
see other users' runs (forced row-level security), so recovery goes through one narrow
SECURITY DEFINER function owned by the schema owner: it can only flip stale ``running`` runs to
``failed`` (nothing else), and only the app role may execute it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def upgrade() -> None:
    op.add_column(
        "agent_runs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True)
    )
    # The table owner is subject to the forced policies too (unless it is a superuser): this
    # policy lets the owner -- hence the definer function below, and nobody else -- see and
    # update running runs of every user.
    op.execute(
        "CREATE POLICY agent_runs_owner_recovery ON agent_runs TO CURRENT_USER "
        "USING (status = 'running') WITH CHECK (status = 'failed')"
    )
    op.execute(
        """
        CREATE FUNCTION jarvis_fail_stale_runs(stale_before timestamptz, reason text)
        RETURNS integer
        LANGUAGE plpgsql
        SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
        DECLARE
          n integer;
        BEGIN
          UPDATE public.agent_runs
             SET status = 'failed',
                 error = left(coalesce(reason, 'The run was interrupted.'), 500),
                 finished_at = now()
           WHERE status = 'running'
             AND coalesce(heartbeat_at, started_at) < stale_before;
          GET DIAGNOSTICS n = ROW_COUNT;
          RETURN n;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION jarvis_fail_stale_runs(timestamptz, text) FROM PUBLIC")
    op.execute(
        f'GRANT EXECUTE ON FUNCTION jarvis_fail_stale_runs(timestamptz, text) TO "{_app_role()}"'
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS jarvis_fail_stale_runs(timestamptz, text)")
    op.execute("DROP POLICY IF EXISTS agent_runs_owner_recovery ON agent_runs")
    op.drop_column("agent_runs", "heartbeat_at")
