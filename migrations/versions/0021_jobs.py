"""background jobs: procrastinate's queue (schema "procrastinate") and the users' job progress

Revision ID: 0021
Revises: 0015
Create Date: 2026-12-02 18:00:00

Long work (a graph import, re-embedding a user's memories) runs on a worker, not in the click.
The queue is procrastinate's: its schema SQL (``migrations/procrastinate/schema-3.10.0.sql``, a
verbatim copy of the package's ``sql/schema.sql``) is applied here, inside a schema of its own
(``procrastinate``), so this migration's history does not change when the package is upgraded
and the downgrade drops the schema whole. The app role may read and write its tables (a worker
and the pages connect as the app role) but create nothing there. Its rows carry only a job id
and a user id.

What a user sees of a job lives in ``jobs`` (row-level security: only its owner sees it):
kind, state (queued / running / succeeded / failed), done / total, the summary or the error,
the timestamps, and the job's input (an uploaded file, cleared when the job ends).

``jarvis_sign_in_purge(now)`` deletes ended sign-in state for the daily purge task: refresh
tokens past their expiry, browser credentials that are expired, revoked, unredeemed past their
ticket's minute, or whose session has no live refresh token left.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_SCHEMA = "procrastinate"
SCHEMA_SQL = Path(__file__).resolve().parents[1] / "procrastinate" / "schema-3.10.0.sql"

_DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public"
PURGE = "jarvis_sign_in_purge(p_now timestamptz)"
PURGE_BODY = f"""RETURNS integer LANGUAGE sql {_DEFINER} AS $$
  WITH tokens AS (
    DELETE FROM public.refresh_tokens t WHERE t.expires_at < p_now RETURNING 1
  ), browsers AS (
    DELETE FROM public.browser_credentials b
     WHERE b.expires_at < p_now
        OR b.revoked_at IS NOT NULL
        OR (b.token_hash IS NULL AND b.ticket_expires_at < p_now)
        OR NOT EXISTS (
             SELECT 1 FROM public.refresh_tokens t
              WHERE t.user_id = b.user_id AND t.family_id = b.session_id
                AND t.revoked_at IS NULL AND t.expires_at >= p_now)
    RETURNING 1
  )
  SELECT ((SELECT count(*) FROM tokens) + (SELECT count(*) FROM browsers))::integer $$"""


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def upgrade() -> None:
    role = _app_role()
    bind = op.get_bind()
    op.execute(f"CREATE SCHEMA {QUEUE_SCHEMA}")
    previous = bind.execute(sa.text("select current_setting('search_path')")).scalar_one()
    bind.execute(sa.text("select set_config('search_path', :p, true)"), {"p": QUEUE_SCHEMA})
    # Straight to psycopg, with no parameters: it sends the script as is (several statements,
    # $$ bodies, % signs), in this migration's transaction.
    driver = bind.connection.driver_connection
    assert driver is not None
    driver.execute(SCHEMA_SQL.read_text(encoding="utf-8"))
    bind.execute(sa.text("select set_config('search_path', :p, true)"), {"p": previous})
    op.execute(f'GRANT USAGE ON SCHEMA {QUEUE_SCHEMA} TO "{role}"')
    op.execute(
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {QUEUE_SCHEMA} TO "{role}"'
    )
    op.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {QUEUE_SCHEMA} TO "{role}"')
    op.execute(f'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {QUEUE_SCHEMA} TO "{role}"')

    op.create_table(
        "jobs",
        sa.Column(
            "id", postgresql.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("user_id", postgresql.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("done", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("params", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed')", name="ck_jobs_state"
        ),
        sa.CheckConstraint("done >= 0 AND total >= 0", name="ck_jobs_progress"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_user_id_created_at", "jobs", ["user_id", "created_at"])
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON jobs TO "{role}"')
    op.execute("ALTER TABLE jobs ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE jobs FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY jobs_owner ON jobs "
        "USING (user_id = jarvis_current_user_id()) WITH CHECK (user_id = jarvis_current_user_id())"
    )
    op.execute(f"CREATE FUNCTION {PURGE} {PURGE_BODY}")
    op.execute(f"REVOKE ALL ON FUNCTION {PURGE} FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION {PURGE} TO "{role}"')


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {PURGE}")
    op.drop_table("jobs")
    op.execute(f"DROP SCHEMA IF EXISTS {QUEUE_SCHEMA} CASCADE")
