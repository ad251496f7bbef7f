"""only administrators change a user's role, activation or budget — also in the database

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 01:45:00

Row-level security limits *which* rows the app role touches, not which columns: a user may
update their own ``users`` row (display name, password, time zone), so a bug in the app could
have let a user make themselves admin, reactivate themselves or raise their own budget. This
trigger refuses those column changes from the app role unless the transaction acts as an
administrator. The owner (migrations, demo data) is not affected.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def upgrade() -> None:
    role = _app_role().replace("'", "''")
    op.execute(
        f"""
        CREATE FUNCTION jarvis_guard_user_columns() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF current_user = '{role}' AND NOT jarvis_is_admin() AND (
               NEW.role IS DISTINCT FROM OLD.role
            OR NEW.is_active IS DISTINCT FROM OLD.is_active
            OR NEW.monthly_budget_usd IS DISTINCT FROM OLD.monthly_budget_usd
            OR NEW.id IS DISTINCT FROM OLD.id) THEN
            RAISE EXCEPTION 'only an administrator may change a role, activation or budget'
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER users_guard_columns BEFORE UPDATE ON users "
        "FOR EACH ROW EXECUTE FUNCTION jarvis_guard_user_columns()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS users_guard_columns ON users")
    op.execute("DROP FUNCTION IF EXISTS jarvis_guard_user_columns()")
