"""one rule adds runs to the usage rollups: jarvis_usage_rollup_add

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 00:10:00

How a finished run (and its tool calls) counts in ``usage_daily`` / ``tool_usage_daily`` was
written three times: for each finished run (the app), for runs recovered as stale (0007's
``jarvis_fail_stale_runs``) and for rebuilds (reprice, time zone change, demo seed). It is now
one function, ``jarvis_usage_rollup_add(run_ids, from_day)``, that all three call:

* a finished run: ``jarvis_usage_rollup_add(ARRAY[id])`` in the run's transaction;
* stale-run recovery: flips the runs to ``failed``, then adds them;
* a rebuild: deletes the rollup rows in scope, then adds every finished run in scope
  (``from_day``: only contributions on local days from then on).

The function runs with the caller's rights (row-level security applies: a user adds only their
own runs to their own rollup rows). Recovery calls it from the owner's SECURITY DEFINER
function, after the runs became ``failed``; an owner that is not a superuser therefore needs to
read them, hence a read-only owner policy on ``agent_runs`` (0006 let it see only running runs).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


ROLLUP_FUNCTION = """
CREATE FUNCTION jarvis_usage_rollup_add(run_ids uuid[], from_day date DEFAULT NULL)
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

STALE_FUNCTION = """
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
  -- A run that had used tokens is unpriced (its cost was never computed), never silently 0.
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

# 0007's version, restored by the downgrade.
OLD_STALE_FUNCTION = """
CREATE OR REPLACE FUNCTION jarvis_fail_stale_runs(stale_before timestamptz, reason text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
  n integer;
BEGIN
  WITH stale AS (
    SELECT r.id, r.user_id, r.provider, r.model, r.started_at,
           r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens,
           (r.input_tokens + r.output_tokens + r.cache_read_tokens + r.cache_write_tokens) AS tokens
      FROM public.agent_runs r
     WHERE r.status = 'running' AND coalesce(r.heartbeat_at, r.started_at) < stale_before
       FOR UPDATE
  ), run_rollup AS (
    INSERT INTO public.usage_daily AS d (user_id, day, provider, model, runs, failed_runs,
        unpriced_runs, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
        total_tokens, cost)
    SELECT s.user_id, (s.started_at AT TIME ZONE u.timezone)::date, s.provider, s.model,
           count(*), count(*), count(*) FILTER (WHERE s.tokens > 0),
           sum(s.input_tokens), sum(s.output_tokens), sum(s.cache_read_tokens),
           sum(s.cache_write_tokens), sum(s.tokens), 0
      FROM stale s JOIN public.users u ON u.id = s.user_id
     GROUP BY 1, 2, 3, 4
    ON CONFLICT (user_id, day, provider, model) DO UPDATE SET
      runs = d.runs + excluded.runs,
      failed_runs = d.failed_runs + excluded.failed_runs,
      unpriced_runs = d.unpriced_runs + excluded.unpriced_runs,
      input_tokens = d.input_tokens + excluded.input_tokens,
      output_tokens = d.output_tokens + excluded.output_tokens,
      cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
      total_tokens = d.total_tokens + excluded.total_tokens
  ), tool_rollup AS (
    INSERT INTO public.tool_usage_daily AS d (user_id, day, tool_id, calls, errors, denied,
        latency_count, latency_ms_sum, latency_ms_max)
    SELECT tc.user_id, (tc.created_at AT TIME ZONE u.timezone)::date, tc.tool_id, count(*),
           count(*) FILTER (WHERE tc.status = 'error'), count(*) FILTER (WHERE tc.status = 'denied'),
           count(tc.latency_ms), coalesce(sum(tc.latency_ms), 0), coalesce(max(tc.latency_ms), 0)
      FROM public.tool_calls tc JOIN public.users u ON u.id = tc.user_id
     WHERE tc.run_id IN (SELECT id FROM stale)
     GROUP BY 1, 2, 3
    ON CONFLICT (user_id, day, tool_id) DO UPDATE SET
      calls = d.calls + excluded.calls,
      errors = d.errors + excluded.errors,
      denied = d.denied + excluded.denied,
      latency_count = d.latency_count + excluded.latency_count,
      latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
      latency_ms_max = greatest(d.latency_ms_max, excluded.latency_ms_max)
  )
  UPDATE public.agent_runs r
     SET status = 'failed',
         error = left(coalesce(reason, 'The run was interrupted.'), 500),
         finished_at = now(),
         total_tokens = s.tokens,
         unpriced = s.tokens > 0
    FROM stale s
   WHERE r.id = s.id;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$
"""

SIGNATURE = "jarvis_usage_rollup_add(uuid[], date)"


def upgrade() -> None:
    op.execute(ROLLUP_FUNCTION)
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION {SIGNATURE} TO "{_app_role()}"')
    # Recovery (the owner's definer function) reads the runs it has just failed.
    op.execute(
        "CREATE POLICY agent_runs_owner_read ON agent_runs FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(STALE_FUNCTION)


def downgrade() -> None:
    op.execute(OLD_STALE_FUNCTION)
    op.execute("DROP POLICY IF EXISTS agent_runs_owner_read ON agent_runs")
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
