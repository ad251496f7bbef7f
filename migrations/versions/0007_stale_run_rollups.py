"""stale-run recovery keeps the usage rollups whole

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 01:20:00

``jarvis_fail_stale_runs`` (0006) flipped dead runs to ``failed`` but the daily rollups (0004)
never heard of them, so the usage page under-counted runs and failures. The function now adds
each failed run (and its tool calls) to ``usage_daily`` / ``tool_usage_daily`` in the same
statement. A run that had used tokens is flagged ``unpriced`` (its cost was never computed),
never silently zero. The owner gets narrow policies so this also works when it is not a
superuser (forced row-level security applies to owners too).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER_POLICIES = (
    ("usage_daily", "usage_daily_owner_recovery", "ALL", "USING (true) WITH CHECK (true)"),
    (
        "tool_usage_daily",
        "tool_usage_daily_owner_recovery",
        "ALL",
        "USING (true) WITH CHECK (true)",
    ),
    ("tool_calls", "tool_calls_owner_recovery", "SELECT", "USING (true)"),
    ("users", "users_owner_recovery", "SELECT", "USING (true)"),
)

NEW_FUNCTION = """
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

OLD_FUNCTION = """
CREATE OR REPLACE FUNCTION jarvis_fail_stale_runs(stale_before timestamptz, reason text)
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


def upgrade() -> None:
    for table, name, command, clause in OWNER_POLICIES:
        op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO CURRENT_USER {clause}")
    op.execute(NEW_FUNCTION)


def downgrade() -> None:
    op.execute(OLD_FUNCTION)
    for table, name, _command, _clause in OWNER_POLICIES:
        op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
