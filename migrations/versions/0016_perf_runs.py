"""faster chat turns: admission says whether the user has memories, a follower reads a run's
status in one statement, and the usage rollup adds one finished run without the batch set-up

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 18:00:00

* ``jarvis_start_run`` (0011) also answers ``memories``: whether the user has any memory with a
  vector. A user without one (every new user) gets no memory retrieval for the turn: no search
  plan, no search and no embedding of the message (the search could find nothing).
* ``jarvis_run_status(user, run)``: a run's status in one autocommit statement (it sets the
  row-level-security user itself, like the other run functions), for followers that check
  whether a silent run is still running (it was BEGIN + set_config + SELECT + ROLLBACK).
* ``jarvis_usage_rollup_add`` (0010), the one rule by which finished runs count in the usage
  rollups, keeps its rule and gains a path for the common call, one finished run (every run's
  close calls it through ``jarvis_finish_run``): the run's row is added as it is, without
  unnesting and grouping a batch, and the tool-call rollup is skipped when the run made no
  tool call. Batches (recovery, rebuilds) take the general path, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


# -- 0011's admission and 0010's rollup rule, verbatim (the downgrade restores them) ------------

OLD_START_RUN = """
CREATE OR REPLACE FUNCTION jarvis_start_run(
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

OLD_ROLLUP = """
CREATE OR REPLACE FUNCTION jarvis_usage_rollup_add(run_ids uuid[], from_day date DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
  -- "LIMIT cardinality(run_ids)" changes nothing but the planner's estimate of a generic plan
  -- (1 row instead of 10), so a session that adds one run at a time soon reuses one cached
  -- plan (about 0.4 ms) instead of planning each call again (about 1.5 ms); a rebuild's
  -- first call is planned for its real number of runs (hash joins).
  --
  -- A run counts once it is no longer running, on the local day (the user's time zone) it
  -- started: failed if it failed, unpriced if flagged so, its cost 0 when it has none.
  INSERT INTO public.usage_daily AS d (user_id, day, provider, model, runs, failed_runs,
      unpriced_runs, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
      total_tokens, cost)
  SELECT r.user_id, (r.started_at AT TIME ZONE u.timezone)::date, r.provider, r.model,
         count(*), count(*) FILTER (WHERE r.status = 'failed'),
         count(*) FILTER (WHERE r.unpriced),
         sum(r.input_tokens), sum(r.output_tokens), sum(r.cache_read_tokens),
         sum(r.cache_write_tokens), sum(r.total_tokens), coalesce(sum(r.total_cost), 0)
    FROM (SELECT unnest(run_ids) AS id LIMIT cardinality(run_ids)) AS s
    JOIN public.agent_runs r ON r.id = s.id
    JOIN public.users u ON u.id = r.user_id
   WHERE r.status <> 'running'
     AND (from_day IS NULL OR (r.started_at AT TIME ZONE u.timezone)::date >= from_day)
   GROUP BY 1, 2, 3, 4
  ON CONFLICT (user_id, day, provider, model) DO UPDATE SET
    runs = d.runs + excluded.runs,
    failed_runs = d.failed_runs + excluded.failed_runs,
    unpriced_runs = d.unpriced_runs + excluded.unpriced_runs,
    input_tokens = d.input_tokens + excluded.input_tokens,
    output_tokens = d.output_tokens + excluded.output_tokens,
    cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
    total_tokens = d.total_tokens + excluded.total_tokens,
    cost = d.cost + excluded.cost;

  -- A tool call of such a run counts on the local day it was made.
  INSERT INTO public.tool_usage_daily AS d (user_id, day, tool_id, calls, errors, denied,
      latency_count, latency_ms_sum, latency_ms_max)
  SELECT tc.user_id, (tc.created_at AT TIME ZONE u.timezone)::date, tc.tool_id, count(*),
         count(*) FILTER (WHERE tc.status = 'error'),
         count(*) FILTER (WHERE tc.status = 'denied'),
         count(tc.latency_ms), coalesce(sum(tc.latency_ms), 0), coalesce(max(tc.latency_ms), 0)
    FROM (SELECT unnest(run_ids) AS id LIMIT cardinality(run_ids)) AS s
    JOIN public.agent_runs r ON r.id = s.id
    JOIN public.tool_calls tc ON tc.run_id = r.id
    JOIN public.users u ON u.id = tc.user_id
   WHERE r.status <> 'running'
     AND (from_day IS NULL OR (tc.created_at AT TIME ZONE u.timezone)::date >= from_day)
   GROUP BY 1, 2, 3
  ON CONFLICT (user_id, day, tool_id) DO UPDATE SET
    calls = d.calls + excluded.calls,
    errors = d.errors + excluded.errors,
    denied = d.denied + excluded.denied,
    latency_count = d.latency_count + excluded.latency_count,
    latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
    latency_ms_max = greatest(d.latency_ms_max, excluded.latency_ms_max);
END
$$
"""


# -- admission: does the user have memories? ---------------------------------------------------


def _replace_once(sql: str, old: str, new: str) -> str:
    assert sql.count(old) == 1, old
    return sql.replace(old, new)


NEW_START_RUN = _replace_once(
    _replace_once(
        _replace_once(
            OLD_START_RUN,
            "  providers jsonb;\nBEGIN",
            "  providers jsonb;\n  has_memories boolean;\nBEGIN",
        ),
        "  stamp := greatest(p_now, conv.updated_at + interval '1 microsecond');",
        "  -- Whether memory retrieval can find anything for this turn (none: no embedding,\n"
        "  -- no search).\n"
        "  has_memories := EXISTS (SELECT 1 FROM public.memories m\n"
        "                           WHERE m.user_id = p_user AND m.embedding IS NOT NULL);\n"
        "  stamp := greatest(p_now, conv.updated_at + interval '1 microsecond');",
    ),
    "'budget', b.budget, 'spent', b.spent);",
    "'budget', b.budget, 'spent', b.spent, 'memories', has_memories);",
)

RUN_STATUS = """
CREATE FUNCTION jarvis_run_status(p_user uuid, p_run uuid)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public
AS $$
BEGIN
  PERFORM set_config('app.user_id', p_user::text, true);
  RETURN (SELECT r.status::text FROM public.agent_runs r WHERE r.id = p_run);
END
$$
"""
RUN_STATUS_SIGNATURE = "jarvis_run_status(uuid, uuid)"

# -- the rollup rule, with a path for one finished run -------------------------------------------

NEW_ROLLUP = """
CREATE OR REPLACE FUNCTION jarvis_usage_rollup_add(run_ids uuid[], from_day date DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
  -- A run counts once it is no longer running, on the local day (the user's time zone) it
  -- started: failed if it failed, unpriced if flagged so, its cost 0 when it has none.
  IF cardinality(run_ids) = 1 AND from_day IS NULL THEN
    -- One finished run (each run's close): its own row, without unnesting and grouping a
    -- batch (the same sums for a batch of one).
    INSERT INTO public.usage_daily AS d (user_id, day, provider, model, runs, failed_runs,
        unpriced_runs, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
        total_tokens, cost)
    SELECT r.user_id, (r.started_at AT TIME ZONE u.timezone)::date, r.provider, r.model,
           1, (r.status = 'failed')::int, coalesce(r.unpriced, false)::int,
           r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens,
           r.total_tokens, coalesce(r.total_cost, 0)
      FROM public.agent_runs r
      JOIN public.users u ON u.id = r.user_id
     WHERE r.id = run_ids[1] AND r.status <> 'running'
    ON CONFLICT (user_id, day, provider, model) DO UPDATE SET
      runs = d.runs + excluded.runs,
      failed_runs = d.failed_runs + excluded.failed_runs,
      unpriced_runs = d.unpriced_runs + excluded.unpriced_runs,
      input_tokens = d.input_tokens + excluded.input_tokens,
      output_tokens = d.output_tokens + excluded.output_tokens,
      cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
      total_tokens = d.total_tokens + excluded.total_tokens,
      cost = d.cost + excluded.cost;
    IF NOT EXISTS (SELECT 1 FROM public.tool_calls tc WHERE tc.run_id = run_ids[1]) THEN
      RETURN;  -- a run without tool calls adds nothing to tool_usage_daily
    END IF;
  ELSE
    -- "LIMIT cardinality(run_ids)" changes nothing but the planner's estimate of a generic
    -- plan (1 row instead of 10); a rebuild's first call is planned for its real number of
    -- runs (hash joins).
    INSERT INTO public.usage_daily AS d (user_id, day, provider, model, runs, failed_runs,
        unpriced_runs, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
        total_tokens, cost)
    SELECT r.user_id, (r.started_at AT TIME ZONE u.timezone)::date, r.provider, r.model,
           count(*), count(*) FILTER (WHERE r.status = 'failed'),
           count(*) FILTER (WHERE r.unpriced),
           sum(r.input_tokens), sum(r.output_tokens), sum(r.cache_read_tokens),
           sum(r.cache_write_tokens), sum(r.total_tokens), coalesce(sum(r.total_cost), 0)
      FROM (SELECT unnest(run_ids) AS id LIMIT cardinality(run_ids)) AS s
      JOIN public.agent_runs r ON r.id = s.id
      JOIN public.users u ON u.id = r.user_id
     WHERE r.status <> 'running'
       AND (from_day IS NULL OR (r.started_at AT TIME ZONE u.timezone)::date >= from_day)
     GROUP BY 1, 2, 3, 4
    ON CONFLICT (user_id, day, provider, model) DO UPDATE SET
      runs = d.runs + excluded.runs,
      failed_runs = d.failed_runs + excluded.failed_runs,
      unpriced_runs = d.unpriced_runs + excluded.unpriced_runs,
      input_tokens = d.input_tokens + excluded.input_tokens,
      output_tokens = d.output_tokens + excluded.output_tokens,
      cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
      total_tokens = d.total_tokens + excluded.total_tokens,
      cost = d.cost + excluded.cost;
  END IF;

  -- A tool call of such a run counts on the local day it was made.
  INSERT INTO public.tool_usage_daily AS d (user_id, day, tool_id, calls, errors, denied,
      latency_count, latency_ms_sum, latency_ms_max)
  SELECT tc.user_id, (tc.created_at AT TIME ZONE u.timezone)::date, tc.tool_id, count(*),
         count(*) FILTER (WHERE tc.status = 'error'),
         count(*) FILTER (WHERE tc.status = 'denied'),
         count(tc.latency_ms), coalesce(sum(tc.latency_ms), 0), coalesce(max(tc.latency_ms), 0)
    FROM (SELECT unnest(run_ids) AS id LIMIT cardinality(run_ids)) AS s
    JOIN public.agent_runs r ON r.id = s.id
    JOIN public.tool_calls tc ON tc.run_id = r.id
    JOIN public.users u ON u.id = tc.user_id
   WHERE r.status <> 'running'
     AND (from_day IS NULL OR (tc.created_at AT TIME ZONE u.timezone)::date >= from_day)
   GROUP BY 1, 2, 3
  ON CONFLICT (user_id, day, tool_id) DO UPDATE SET
    calls = d.calls + excluded.calls,
    errors = d.errors + excluded.errors,
    denied = d.denied + excluded.denied,
    latency_count = d.latency_count + excluded.latency_count,
    latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
    latency_ms_max = greatest(d.latency_ms_max, excluded.latency_ms_max);
END
$$
"""


def upgrade() -> None:
    op.execute(NEW_START_RUN)
    op.execute(NEW_ROLLUP)
    op.execute(RUN_STATUS)
    op.execute(f"REVOKE ALL ON FUNCTION {RUN_STATUS_SIGNATURE} FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION {RUN_STATUS_SIGNATURE} TO "{_app_role()}"')


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {RUN_STATUS_SIGNATURE}")
    op.execute(OLD_ROLLUP)
    op.execute(OLD_START_RUN)
