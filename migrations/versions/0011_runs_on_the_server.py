"""runs belong to the server: the run event log, process heartbeats, cancel requests, budget
reservations, and one-round-trip start / append / finish functions

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 12:30:00

* ``run_events``: the append-only log of every run (``seq`` gap-free per run), under forced
  row-level security like every user table. Writers ``pg_notify('jarvis_run_events',
  '<run>:<seq>')`` in the same transaction; followers replay from a sequence number.
* ``run_workers``: one row per app process that executes runs, with its heartbeat. A running
  run whose process stopped beating is failed by any other process (``jarvis_fail_stale_runs``).
* ``agent_runs``: ``worker_id`` (the process executing it), ``cancel_requested_at`` (Stop, from
  anywhere), ``reserved_usd`` (what admission reserved of the month's budget),
  ``usage_estimated`` (tokens estimated because the provider sent no usage).
* ``jarvis_month_budget``: the one rule for "which budget applies and how much of it is spent".
* ``jarvis_start_run`` / ``jarvis_append_run_events`` / ``jarvis_finish_run``: each one
  statement, so a chat turn's bookkeeping is a handful of round trips. They run with the
  caller's rights and set the row-level-security user themselves (a value the app role could set
  anyway: nothing is widened).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


MONTH_BUDGET = """
CREATE FUNCTION jarvis_month_budget(p_user uuid, p_default numeric, p_now timestamptz)
RETURNS TABLE (budget numeric, source text, spent numeric, unpriced_runs bigint,
               reserved numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $$
  WITH u AS (
    SELECT id, timezone, monthly_budget_usd FROM public.users WHERE id = p_user
  ), admin_default AS (
    SELECT (value #>> '{}')::numeric AS usd FROM public.app_settings
     WHERE key = 'default_monthly_budget_usd'
       AND (value #>> '{}') ~ '^[0-9]{1,9}(\\.[0-9]{1,6})?$'
  ), month AS (
    SELECT coalesce(sum(d.cost), 0) AS cost, coalesce(sum(d.unpriced_runs), 0) AS unpriced
      FROM public.usage_daily d, u
     WHERE d.user_id = u.id
       AND d.day >= date_trunc('month', p_now AT TIME ZONE u.timezone)::date
       AND d.day <= (p_now AT TIME ZONE u.timezone)::date
  ), held AS (
    SELECT coalesce(sum(r.reserved_usd), 0) AS usd FROM public.agent_runs r
     WHERE r.user_id = p_user AND r.status = 'running'
  )
  SELECT coalesce(u.monthly_budget_usd, (SELECT usd FROM admin_default), p_default),
         CASE WHEN u.monthly_budget_usd IS NOT NULL THEN 'user'
              WHEN EXISTS (SELECT 1 FROM admin_default) THEN 'admin default'
              ELSE 'default' END,
         month.cost, month.unpriced, held.usd
    FROM u, month, held
$$
"""

START_RUN = """
CREATE FUNCTION jarvis_start_run(
  p_user uuid, p_role text, p_conversation uuid, p_run uuid, p_message uuid, p_worker uuid,
  p_text text, p_title text, p_default_title text, p_now timestamptz,
  p_max_running integer, p_per_minute integer, p_cost_cap numeric, p_default_budget numeric,
  p_history integer, p_stale_before timestamptz, p_stale_reason text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
  conv record;
  b record;
  n_running integer;
  n_recent integer;
  oldest timestamptz;
  remaining numeric;
  reservation numeric;
  stamp timestamptz;
  history jsonb;
  perms jsonb;
  providers jsonb;
BEGIN
  PERFORM set_config('app.user_id', p_user::text, true);
  PERFORM set_config('app.user_role', coalesce(p_role, ''), true);
  -- One admission at a time per user, in every process: the checks below see every run.
  PERFORM pg_advisory_xact_lock(7261007, hashtext(p_user::text));

  SELECT c.id, c.title, c.provider, c.model, c.updated_at INTO conv
    FROM public.conversations c WHERE c.id = p_conversation FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'no_conversation');
  END IF;
  SELECT count(*) INTO n_running FROM public.agent_runs r
   WHERE r.user_id = p_user AND r.status = 'running';
  IF n_running > 0 AND (n_running >= p_max_running OR EXISTS (
       SELECT 1 FROM public.agent_runs r
        WHERE r.conversation_id = p_conversation AND r.status = 'running')) THEN
    -- A run of a dead process must not hold a slot: fail the stale ones first, recount.
    PERFORM public.jarvis_fail_stale_runs(p_stale_before, p_stale_reason);
    SELECT count(*) INTO n_running FROM public.agent_runs r
     WHERE r.user_id = p_user AND r.status = 'running';
  END IF;
  IF EXISTS (SELECT 1 FROM public.agent_runs r
              WHERE r.conversation_id = p_conversation AND r.status = 'running') THEN
    RETURN jsonb_build_object('outcome', 'conversation_busy');
  END IF;

  -- Messages per minute: the user's runs started in the last minute (refused turns made none).
  SELECT count(*), min(r.started_at) INTO n_recent, oldest FROM public.agent_runs r
   WHERE r.user_id = p_user AND r.started_at > p_now - interval '60 seconds';
  IF n_recent >= p_per_minute THEN
    RETURN jsonb_build_object('outcome', 'rate_limited', 'retry_after',
      greatest(1, ceil(extract(epoch FROM (oldest + interval '60 seconds' - p_now)))));
  END IF;

  IF n_running >= p_max_running THEN
    RETURN jsonb_build_object('outcome', 'busy', 'running', n_running);
  END IF;

  -- The month's budget: what is left after what finished runs cost and what running runs
  -- reserved; this run reserves at most its cost cap of it.
  SELECT * INTO b FROM public.jarvis_month_budget(p_user, p_default_budget, p_now);
  remaining := b.budget - b.spent - b.reserved;
  IF remaining <= 0 THEN
    RETURN jsonb_build_object('outcome', 'budget', 'budget', b.budget, 'spent', b.spent,
                              'reserved', b.reserved);
  END IF;
  reservation := least(p_cost_cap, remaining);

  SELECT coalesce(jsonb_agg(jsonb_build_array(h.role, h.content) ORDER BY h.created_at, h.id),
                  '[]'::jsonb) INTO history
    FROM (SELECT m.role, m.content, m.created_at, m.id FROM public.messages m
           WHERE m.conversation_id = p_conversation AND m.role IN ('user', 'assistant')
           ORDER BY m.created_at DESC, m.id LIMIT p_history) h;
  SELECT coalesce(jsonb_object_agg(p.tool_id, p.granted), '{}'::jsonb) INTO perms
    FROM public.user_tool_permissions p WHERE p.user_id = p_user;
  SELECT coalesce(jsonb_agg(DISTINCT s.provider), '[]'::jsonb) INTO providers
    FROM public.user_secrets s WHERE s.user_id = p_user;

  stamp := greatest(p_now, conv.updated_at + interval '1 microsecond');
  INSERT INTO public.agent_runs (id, user_id, conversation_id, provider, model, status,
                                 started_at, heartbeat_at, worker_id, reserved_usd)
  VALUES (p_run, p_user, p_conversation, coalesce(conv.provider, 'offline'),
          coalesce(conv.model, 'offline'), 'running', stamp, p_now, p_worker, reservation);
  INSERT INTO public.messages (id, run_id, conversation_id, user_id, role, content, created_at)
  VALUES (p_message, p_run, p_conversation, p_user, 'user', p_text, stamp);
  UPDATE public.conversations
     SET updated_at = stamp,
         title = CASE WHEN title = p_default_title THEN p_title ELSE title END
   WHERE id = p_conversation;

  RETURN jsonb_build_object(
    'outcome', 'ok', 'provider', coalesce(conv.provider, 'offline'),
    'model', coalesce(conv.model, 'offline'), 'started_at', stamp, 'history', history,
    'permissions', perms, 'secret_providers', providers, 'reserved', reservation,
    'budget', b.budget, 'spent', b.spent);
END
$$
"""

APPEND_EVENTS = """
CREATE FUNCTION jarvis_append_run_events(p_user uuid, p_run uuid, p_events jsonb)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
  last_seq integer;
BEGIN
  PERFORM set_config('app.user_id', p_user::text, true);
  -- Only a running run grows (a run failed by recovery keeps the log recovery closed).
  IF NOT EXISTS (SELECT 1 FROM public.agent_runs r
                  WHERE r.id = p_run AND r.status = 'running') THEN
    RETURN false;
  END IF;
  INSERT INTO public.run_events (run_id, seq, user_id, type, payload, created_at)
  SELECT p_run, e.seq, p_user, e.type, e.payload, clock_timestamp()
    FROM jsonb_to_recordset(p_events) AS e(seq integer, type text, payload jsonb)
  ON CONFLICT DO NOTHING;
  SELECT max(e.seq) INTO last_seq FROM jsonb_to_recordset(p_events) AS e(seq integer);
  PERFORM pg_notify('jarvis_run_events', p_run::text || ':' || coalesce(last_seq, 0));
  RETURN true;
END
$$
"""

FINISH_RUN = """
CREATE FUNCTION jarvis_finish_run(
  p_user uuid, p_run uuid, p_status text, p_error text, p_answer text, p_message uuid,
  p_answer_at timestamptz, p_now timestamptz, p_input bigint, p_output bigint,
  p_cache_read bigint, p_cache_write bigint, p_cost numeric, p_price_version integer,
  p_unpriced boolean, p_estimated boolean, p_events jsonb)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
  run record;
  last_seq integer;
BEGIN
  PERFORM set_config('app.user_id', p_user::text, true);
  SELECT r.id, r.status, r.started_at, r.conversation_id INTO run
    FROM public.agent_runs r WHERE r.id = p_run FOR UPDATE;
  IF NOT FOUND OR run.status <> 'running' THEN
    RETURN false;  -- closed already (recovered as stale, or finished twice)
  END IF;
  IF coalesce(p_answer, '') <> '' THEN
    INSERT INTO public.messages (id, run_id, conversation_id, user_id, role, content,
                                 created_at)
    VALUES (p_message, p_run, run.conversation_id, p_user, 'assistant', p_answer, p_answer_at);
  END IF;
  UPDATE public.agent_runs
     SET status = p_status,
         error = nullif(left(coalesce(p_error, ''), 2000), ''),
         input_tokens = p_input, output_tokens = p_output,
         cache_read_tokens = p_cache_read, cache_write_tokens = p_cache_write,
         total_tokens = p_input + p_output + p_cache_read + p_cache_write,
         total_cost = p_cost, price_version = p_price_version, unpriced = p_unpriced,
         usage_estimated = p_estimated,
         finished_at = greatest(p_now, run.started_at), heartbeat_at = p_now,
         reserved_usd = NULL
   WHERE id = p_run;
  PERFORM public.jarvis_usage_rollup_add(ARRAY[p_run]);
  UPDATE public.conversations SET updated_at = greatest(updated_at, p_answer_at)
   WHERE id = run.conversation_id;
  INSERT INTO public.run_events (run_id, seq, user_id, type, payload, created_at)
  SELECT p_run, e.seq, p_user, e.type, e.payload, clock_timestamp()
    FROM jsonb_to_recordset(p_events) AS e(seq integer, type text, payload jsonb)
  ON CONFLICT DO NOTHING;
  SELECT max(e.seq) INTO last_seq FROM jsonb_to_recordset(p_events) AS e(seq integer);
  PERFORM pg_notify('jarvis_run_events', p_run::text || ':' || coalesce(last_seq, 0));
  RETURN true;
END
$$
"""

READ_EVENTS = """
CREATE FUNCTION jarvis_read_run_events(p_user uuid, p_run uuid, p_after integer, p_limit integer)
RETURNS TABLE (seq integer, type text, payload jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $$
BEGIN
  PERFORM set_config('app.user_id', p_user::text, true);
  RETURN QUERY SELECT e.seq, e.type::text, e.payload FROM public.run_events e
                WHERE e.run_id = p_run AND e.seq > p_after ORDER BY e.seq LIMIT p_limit;
END
$$
"""

# Recovery for every user's runs (owner's rights, like 0006/0010): a run whose process stopped
# beating, or that was left without a process, is failed, its log closed with a run_failed
# event, its reservation released and its usage counted.
STALE_RUNS = """
CREATE OR REPLACE FUNCTION jarvis_fail_stale_runs(stale_before timestamptz, reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
  stale_ids uuid[];
  n integer;
BEGIN
  SELECT coalesce(array_agg(s.id), '{}') INTO stale_ids
    FROM (SELECT r.id FROM public.agent_runs r
            LEFT JOIN public.run_workers w ON w.id = r.worker_id
           WHERE r.status = 'running'
             AND CASE WHEN r.worker_id IS NULL
                      THEN coalesce(r.heartbeat_at, r.started_at) < stale_before
                      ELSE w.id IS NULL OR w.heartbeat_at < stale_before END
             FOR UPDATE OF r SKIP LOCKED) s;
  IF cardinality(stale_ids) = 0 THEN
    RETURN 0;
  END IF;
  UPDATE public.agent_runs r
     SET status = 'failed',
         error = left(coalesce(reason, 'The run was interrupted.'), 500),
         finished_at = now(),
         reserved_usd = NULL,
         total_tokens = r.input_tokens + r.output_tokens + r.cache_read_tokens
                        + r.cache_write_tokens,
         unpriced = (r.input_tokens + r.output_tokens + r.cache_read_tokens
                     + r.cache_write_tokens) > 0
   WHERE r.id = ANY(stale_ids);
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM public.jarvis_usage_rollup_add(stale_ids);
  INSERT INTO public.run_events (run_id, seq, user_id, type, payload, created_at)
  SELECT r.id, coalesce((SELECT max(e.seq) FROM public.run_events e WHERE e.run_id = r.id), 0) + 1,
         r.user_id, 'run_failed',
         jsonb_build_object('type', 'run_failed', 'run_id', r.id,
                            'error', left(coalesce(reason, 'The run was interrupted.'), 500),
                            'total_tokens', r.total_tokens, 'cost_usd', NULL),
         clock_timestamp()
    FROM public.agent_runs r WHERE r.id = ANY(stale_ids);
  PERFORM pg_notify('jarvis_run_events', id::text || ':' || '0') FROM unnest(stale_ids) AS id;
  DELETE FROM public.run_workers w WHERE w.heartbeat_at < stale_before;
  RETURN n;
END
$$
"""

CANCEL_REQUESTED = """
CREATE FUNCTION jarvis_cancel_requested(run_ids uuid[])
RETURNS SETOF uuid
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
  SELECT r.id FROM public.agent_runs r
   WHERE r.id = ANY(run_ids) AND r.cancel_requested_at IS NOT NULL
$$
"""


def upgrade() -> None:
    op.add_column("agent_runs", sa.Column("worker_id", postgresql.UUID(), nullable=True))
    op.add_column(
        "agent_runs", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("agent_runs", sa.Column("reserved_usd", sa.Numeric(14, 6), nullable=True))
    op.add_column(
        "agent_runs",
        sa.Column("usage_estimated", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(
        "ix_agent_runs_conversation_running",
        "agent_runs",
        ["conversation_id"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "run_events",
        sa.Column("run_id", postgresql.UUID(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("user_id", postgresql.UUID(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["run_id"], ["agent_runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "seq"),
    )
    op.create_index("ix_run_events_user_id_created_at", "run_events", ["user_id", "created_at"])
    op.create_table(
        "run_workers",
        sa.Column("id", postgresql.UUID(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "heartbeat_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    role = _app_role()
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON run_events, run_workers TO "{role}"')
    # /api/v1/ready compares the database's migration with the code's.
    op.execute(f'GRANT SELECT ON alembic_version TO "{role}"')
    op.execute("ALTER TABLE run_events ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE run_events FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY run_events_owner ON run_events "
        "USING (user_id = jarvis_current_user_id()) WITH CHECK (user_id = jarvis_current_user_id())"
    )
    # The schema owner's recovery function closes other users' logs (never the app role).
    op.execute(
        "CREATE POLICY run_events_owner_recovery ON run_events TO CURRENT_USER "
        "USING (true) WITH CHECK (type = 'run_failed')"
    )
    # run_workers holds no user data (a process id and its heartbeat): no row security.
    for sql in (MONTH_BUDGET, START_RUN, APPEND_EVENTS, FINISH_RUN, READ_EVENTS):
        op.execute(sql)
    op.execute(STALE_RUNS)
    op.execute(CANCEL_REQUESTED)
    for signature in (
        "jarvis_month_budget(uuid, numeric, timestamptz)",
        "jarvis_start_run(uuid, text, uuid, uuid, uuid, uuid, text, text, text, timestamptz,"
        " integer, integer, numeric, numeric, integer, timestamptz, text)",
        "jarvis_append_run_events(uuid, uuid, jsonb)",
        "jarvis_finish_run(uuid, uuid, text, text, text, uuid, timestamptz, timestamptz, bigint,"
        " bigint, bigint, bigint, numeric, integer, boolean, boolean, jsonb)",
        "jarvis_read_run_events(uuid, uuid, integer, integer)",
        "jarvis_cancel_requested(uuid[])",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f'GRANT EXECUTE ON FUNCTION {signature} TO "{role}"')


def downgrade() -> None:
    for signature in (
        "jarvis_cancel_requested(uuid[])",
        "jarvis_read_run_events(uuid, uuid, integer, integer)",
        "jarvis_finish_run(uuid, uuid, text, text, text, uuid, timestamptz, timestamptz, bigint,"
        " bigint, bigint, bigint, numeric, integer, boolean, boolean, jsonb)",
        "jarvis_append_run_events(uuid, uuid, jsonb)",
        "jarvis_start_run(uuid, text, uuid, uuid, uuid, uuid, text, text, text, timestamptz,"
        " integer, integer, numeric, numeric, integer, timestamptz, text)",
        "jarvis_month_budget(uuid, numeric, timestamptz)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    # 0010's recovery function, verbatim.
    op.execute(
        """
CREATE OR REPLACE FUNCTION jarvis_fail_stale_runs(stale_before timestamptz, reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
  stale_ids uuid[];
  n integer;
BEGIN
  SELECT coalesce(array_agg(s.id), '{}') INTO stale_ids
    FROM (SELECT r.id FROM public.agent_runs r
           WHERE r.status = 'running' AND coalesce(r.heartbeat_at, r.started_at) < stale_before
             FOR UPDATE) s;
  UPDATE public.agent_runs r
     SET status = 'failed',
         error = left(coalesce(reason, 'The run was interrupted.'), 500),
         finished_at = now(),
         total_tokens = r.input_tokens + r.output_tokens + r.cache_read_tokens
                        + r.cache_write_tokens,
         unpriced = (r.input_tokens + r.output_tokens + r.cache_read_tokens
                     + r.cache_write_tokens) > 0
   WHERE r.id = ANY(stale_ids);
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM public.jarvis_usage_rollup_add(stale_ids);
  RETURN n;
END
$$
"""
    )
    op.drop_table("run_workers")
    op.drop_table("run_events")
    op.drop_index("ix_agent_runs_conversation_running", table_name="agent_runs")
    for column in ("usage_estimated", "reserved_usd", "cancel_requested_at", "worker_id"):
        op.drop_column("agent_runs", column)
