"""no session setting widens what the app role sees: narrow definer functions replace the auth scope

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 12:00:00

Until now row-level security was steered by settings the app role sets itself: ``app.scope =
'auth'`` opened every user and refresh token (sign-in needed a few cross-user lookups), and
``app.user_role = 'admin'`` made any transaction an administrator's. An SQL injection anywhere
could have set either. After this migration:

* The cross-user lookups go through narrow ``SECURITY DEFINER`` functions owned by the owner
  (as stale-run recovery already does, 0006/0007/0010), each answering one question about one
  key: the user id for an email, whether any user exists, the oldest active admin, the user of a
  refresh-token hash, revoking one user's sessions (themselves or a verified admin), the users
  with secrets (key rotation). ``app.scope`` means nothing any more (its policies are gone).
* ``jarvis_is_admin()`` checks the database: the acting user must *be* an active admin, not
  merely claim it; admin policies call it once per statement (``(SELECT jarvis_is_admin())``).
  A trigger refuses an app-role INSERT of an admin (or of a budget) unless a verified admin does
  it or it is the very first account, so nobody can mint an admin row to act as.
* ``rate_limit_buckets`` (sign-in IPs, user ids in keys) and ``account_lockouts`` (login names)
  are reached only through definer functions, one key at a time: the app role has no table
  rights and forced row-level security on them.
* ``app_settings`` and ``model_prices`` get FORCE ROW LEVEL SECURITY (and the owner a policy to
  seed them).

The owner gets ``TO CURRENT_USER`` policies where its functions read or write under forced RLS
(an owner that is not a superuser); ``users_admin`` applies to the app role only, so the
definer ``jarvis_is_admin()`` reading ``users`` as the owner cannot recurse into itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


def _q(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public"

#: (signature, body) of every function the app role may execute.
FUNCTIONS: tuple[tuple[str, str], ...] = (
    (
        "jarvis_user_id_for_email(p_email text)",
        f"""RETURNS uuid LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT u.id FROM public.users u WHERE lower(u.email) = lower(btrim(p_email)) $$""",
    ),
    (
        "jarvis_has_users()",
        f"""RETURNS boolean LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT EXISTS (SELECT 1 FROM public.users) $$""",
    ),
    (
        "jarvis_first_active_admin()",
        f"""RETURNS uuid LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT u.id FROM public.users u WHERE u.role = 'admin' AND u.is_active
           ORDER BY u.created_at, u.id LIMIT 1 $$""",
    ),
    (
        "jarvis_refresh_token_user(p_token_hash text)",
        f"""RETURNS uuid LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT t.user_id FROM public.refresh_tokens t WHERE t.token_hash = p_token_hash $$""",
    ),
    (
        "jarvis_revoke_sessions(p_user uuid, p_at timestamptz, p_reason text)",
        f"""RETURNS integer LANGUAGE plpgsql {_DEFINER} AS $$
        DECLARE n integer;
        BEGIN
          IF p_user IS DISTINCT FROM public.jarvis_current_user_id()
             AND NOT public.jarvis_is_admin() THEN
            RAISE EXCEPTION 'only the user or an administrator may end these sessions'
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          UPDATE public.refresh_tokens SET revoked_at = p_at, revoked_reason = left(p_reason, 64)
           WHERE user_id = p_user AND revoked_at IS NULL;
          GET DIAGNOSTICS n = ROW_COUNT;
          RETURN n;
        END $$""",
    ),
    (
        "jarvis_secret_owner_ids()",
        f"""RETURNS SETOF uuid LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT u.id FROM public.users u
           WHERE EXISTS (SELECT 1 FROM public.user_secrets s WHERE s.user_id = u.id)
           ORDER BY u.created_at, u.id $$""",
    ),
    # -- fixed-window counters (rate_limit_buckets) ------------------------------------------
    (
        "jarvis_rate_limit_hit(p_key text, p_window timestamptz)",
        f"""RETURNS integer LANGUAGE plpgsql {_DEFINER} AS $$
        DECLARE n integer;
        BEGIN
          INSERT INTO public.rate_limit_buckets AS b (key, window_start, count)
          VALUES (p_key, p_window, 1)
          ON CONFLICT (key, window_start) DO UPDATE SET count = b.count + 1
          RETURNING b.count INTO n;
          IF n = 1 THEN  -- a new window: the key's older ones are of no use any more
            DELETE FROM public.rate_limit_buckets WHERE key = p_key AND window_start < p_window;
          END IF;
          RETURN n;
        END $$""",
    ),
    (
        "jarvis_rate_limit_count(p_key text, p_window timestamptz)",
        f"""RETURNS integer LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT coalesce((SELECT b.count FROM public.rate_limit_buckets b
                            WHERE b.key = p_key AND b.window_start = p_window), 0) $$""",
    ),
    (
        "jarvis_rate_limit_reset(p_key text)",
        f"""RETURNS void LANGUAGE sql {_DEFINER} AS $$
          DELETE FROM public.rate_limit_buckets WHERE key = p_key $$""",
    ),
    (
        "jarvis_rate_limit_purge(p_before timestamptz)",
        f"""RETURNS integer LANGUAGE sql {_DEFINER} AS $$
          WITH gone AS (DELETE FROM public.rate_limit_buckets WHERE window_start < p_before
                        RETURNING 1)
          SELECT count(*)::integer FROM gone $$""",
    ),
    # -- per-login-name failures (account_lockouts) -------------------------------------------
    (
        "jarvis_lockout_get(p_key text)",
        f"""RETURNS SETOF public.account_lockouts LANGUAGE sql STABLE {_DEFINER} AS $$
          SELECT * FROM public.account_lockouts WHERE key = p_key $$""",
    ),
    (
        "jarvis_lockout_lock(p_key text)",
        f"""RETURNS SETOF public.account_lockouts LANGUAGE plpgsql {_DEFINER} AS $$
        BEGIN
          INSERT INTO public.account_lockouts (key, failures, lockouts) VALUES (p_key, 0, 0)
          ON CONFLICT (key) DO NOTHING;
          RETURN QUERY SELECT * FROM public.account_lockouts WHERE key = p_key FOR UPDATE;
        END $$""",
    ),
    (
        "jarvis_lockout_save(p_key text, p_failures integer, p_lockouts integer,"
        " p_locked_until timestamptz, p_last_failure_at timestamptz)",
        f"""RETURNS void LANGUAGE sql {_DEFINER} AS $$
          UPDATE public.account_lockouts
             SET failures = p_failures, lockouts = p_lockouts, locked_until = p_locked_until,
                 last_failure_at = p_last_failure_at
           WHERE key = p_key $$""",
    ),
    (
        "jarvis_lockout_clear(p_key text)",
        f"""RETURNS void LANGUAGE sql {_DEFINER} AS $$
          DELETE FROM public.account_lockouts WHERE key = p_key $$""",
    ),
    (
        "jarvis_lockout_purge(p_before timestamptz)",
        f"""RETURNS integer LANGUAGE sql {_DEFINER} AS $$
          WITH gone AS (DELETE FROM public.account_lockouts
                         WHERE coalesce(last_failure_at, p_before) < p_before RETURNING 1)
          SELECT count(*)::integer FROM gone $$""",
    ),
)

VERIFIED_IS_ADMIN = f"""
CREATE OR REPLACE FUNCTION jarvis_is_admin() RETURNS boolean LANGUAGE sql STABLE {_DEFINER} AS $$
  SELECT coalesce(current_setting('app.user_role', true), '') = 'admin'
     AND EXISTS (SELECT 1 FROM public.users u
                  WHERE u.id = public.jarvis_current_user_id()
                    AND u.role = 'admin' AND u.is_active)
$$
"""
CLAIMED_IS_ADMIN = """
CREATE OR REPLACE FUNCTION jarvis_is_admin() RETURNS boolean LANGUAGE sql STABLE
SECURITY INVOKER AS
$$ SELECT coalesce(current_setting('app.user_role', true), '') = 'admin'
          AND coalesce(current_setting('app.user_id', true), '') <> '' $$
"""

#: Policies that call jarvis_is_admin(): (table, name, command, using, check), as 0001 made them.
ADMIN_POLICIES: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    ("agent_runs", "agent_runs_admin_read", "SELECT", "{admin}", None),
    ("tool_calls", "tool_calls_admin_read", "SELECT", "{admin}", None),
    ("users", "users_admin", "ALL", "{admin}", "{admin}"),
    (
        "audit_events",
        "audit_events_read",
        "SELECT",
        "user_id = jarvis_current_user_id() OR {admin}",
        None,
    ),
    ("model_prices", "model_prices_admin_write", "ALL", "{admin}", "{admin}"),
    ("app_settings", "app_settings_admin_write", "ALL", "{admin}", "{admin}"),
)

#: Owner policies for the definer functions under forced RLS: (table, name, command, clause).
OWNER_POLICIES: tuple[tuple[str, str, str, str], ...] = (
    ("refresh_tokens", "refresh_tokens_owner_definer", "ALL", "USING (true) WITH CHECK (true)"),
    ("user_secrets", "user_secrets_owner_ids", "SELECT", "USING (true)"),
    ("rate_limit_buckets", "rate_limit_buckets_owner", "ALL", "USING (true) WITH CHECK (true)"),
    ("account_lockouts", "account_lockouts_owner", "ALL", "USING (true) WITH CHECK (true)"),
    ("model_prices", "model_prices_owner_write", "ALL", "USING (true) WITH CHECK (true)"),
    ("app_settings", "app_settings_owner_write", "ALL", "USING (true) WITH CHECK (true)"),
)

GUARD_TRIGGER = """
CREATE OR REPLACE FUNCTION jarvis_guard_user_columns() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_user <> {role} OR jarvis_is_admin() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF (NEW.role IS DISTINCT FROM 'user' AND jarvis_has_users())
       OR NEW.monthly_budget_usd IS NOT NULL OR NOT NEW.is_active THEN
      RAISE EXCEPTION 'only an administrator may create an administrator, a budget or an inactive account'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  ELSIF NEW.role IS DISTINCT FROM OLD.role
     OR NEW.is_active IS DISTINCT FROM OLD.is_active
     OR NEW.monthly_budget_usd IS DISTINCT FROM OLD.monthly_budget_usd
     OR NEW.id IS DISTINCT FROM OLD.id THEN
    RAISE EXCEPTION 'only an administrator may change a role, activation or budget'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$
"""
OLD_GUARD_TRIGGER = """
CREATE OR REPLACE FUNCTION jarvis_guard_user_columns() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_user = {role} AND NOT jarvis_is_admin() AND (
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


def _policy(table: str, name: str, command: str, using: str | None, check: str | None) -> str:
    sql = f"CREATE POLICY {name} ON {table} FOR {command}"
    if table == "users":  # the owner's definer functions read users without recursing
        sql += f" TO {_q(_app_role())}"
    if using is not None:
        sql += f" USING ({using})"
    if check is not None:
        sql += f" WITH CHECK ({check})"
    return sql


def upgrade() -> None:
    role = _app_role()
    # 1. The auth scope goes: its policies, then the function they called.
    for table, name in (
        ("users", "users_auth"),
        ("refresh_tokens", "refresh_tokens_auth"),
        ("account_lockouts", "account_lockouts_auth"),
        ("audit_events", "audit_events_insert"),
    ):
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
    op.execute(
        "CREATE POLICY audit_events_insert ON audit_events FOR INSERT WITH CHECK ("
        "user_id IS NULL OR user_id = jarvis_current_user_id() OR (SELECT jarvis_is_admin()))"
    )
    op.execute("DROP FUNCTION IF EXISTS jarvis_scope()")

    # 2. Administrators are verified in the database, once per statement.
    op.execute(VERIFIED_IS_ADMIN)
    for table, name, command, using, check in ADMIN_POLICIES:
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        admin = "(SELECT jarvis_is_admin())"
        op.execute(
            _policy(
                table,
                name,
                command,
                using.format(admin=admin) if using else None,
                check.format(admin=admin) if check else None,
            )
        )

    # 3. Forced RLS where it was missing; the app role keeps no rights on the throttling tables.
    for table in ("rate_limit_buckets", "app_settings", "model_prices"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    for table, name, command, clause in OWNER_POLICIES:
        op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO CURRENT_USER {clause}")
    for table in ("rate_limit_buckets", "account_lockouts"):
        op.execute(f"REVOKE ALL ON {table} FROM {_q(role)}")

    # 4. The narrow functions (owner's rights, the app role may execute them, nobody else).
    for signature, body in FUNCTIONS:
        op.execute(f"CREATE FUNCTION {signature} {body}")
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {_q(role)}")
    op.execute("REVOKE ALL ON FUNCTION jarvis_is_admin() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION jarvis_is_admin() TO {_q(role)}")

    # 5. Nobody mints an administrator (or a budget) by inserting a users row.
    op.execute(GUARD_TRIGGER.format(role=_lit(role)))
    op.execute("DROP TRIGGER IF EXISTS users_guard_columns ON users")
    op.execute(
        "CREATE TRIGGER users_guard_columns BEFORE INSERT OR UPDATE ON users "
        "FOR EACH ROW EXECUTE FUNCTION jarvis_guard_user_columns()"
    )


def downgrade() -> None:
    role = _app_role()
    op.execute("DROP TRIGGER IF EXISTS users_guard_columns ON users")
    op.execute(OLD_GUARD_TRIGGER.format(role=_lit(role)))
    op.execute(
        "CREATE TRIGGER users_guard_columns BEFORE UPDATE ON users "
        "FOR EACH ROW EXECUTE FUNCTION jarvis_guard_user_columns()"
    )
    for signature, _body in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for table in ("rate_limit_buckets", "account_lockouts"):
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {_q(role)}")
    for table, name, _command, _clause in OWNER_POLICIES:
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
    for table in ("app_settings", "model_prices"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rate_limit_buckets NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rate_limit_buckets DISABLE ROW LEVEL SECURITY")

    op.execute(CLAIMED_IS_ADMIN)
    op.execute("GRANT EXECUTE ON FUNCTION jarvis_is_admin() TO PUBLIC")
    for table, name, command, using, check in ADMIN_POLICIES:
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        sql = f"CREATE POLICY {name} ON {table} FOR {command}"
        if using is not None:
            sql += f" USING ({using.format(admin='jarvis_is_admin()')})"
        if check is not None:
            sql += f" WITH CHECK ({check.format(admin='jarvis_is_admin()')})"
        op.execute(sql)

    op.execute(
        """CREATE FUNCTION jarvis_scope() RETURNS text LANGUAGE sql STABLE AS
        $$ SELECT coalesce(current_setting('app.scope', true), '') $$"""
    )
    op.execute("DROP POLICY IF EXISTS audit_events_insert ON audit_events")
    op.execute(
        "CREATE POLICY audit_events_insert ON audit_events FOR INSERT WITH CHECK ("
        "user_id IS NULL OR user_id = jarvis_current_user_id() "
        "OR jarvis_scope() = 'auth' OR jarvis_is_admin())"
    )
    op.execute(
        "CREATE POLICY account_lockouts_auth ON account_lockouts "
        "USING (jarvis_scope() = 'auth') WITH CHECK (jarvis_scope() = 'auth')"
    )
    op.execute(
        "CREATE POLICY refresh_tokens_auth ON refresh_tokens "
        "USING (jarvis_scope() = 'auth') WITH CHECK (jarvis_scope() = 'auth')"
    )
    op.execute(
        "CREATE POLICY users_auth ON users "
        "USING (jarvis_scope() = 'auth') WITH CHECK (jarvis_scope() = 'auth')"
    )
