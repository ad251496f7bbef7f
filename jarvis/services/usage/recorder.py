"""The per-run bookkeeping: price a finished run and add it to the usage rollups.

Called by the chat engine in the run's own closing transaction, so the run's cost and the
daily rollups (``usage_daily``, ``tool_usage_daily``) can never disagree: every usage aggregate
reads the rollups (see PERFORMANCE.md and ``benchmarks/usage_bench.py`` for why — rollup vs
covering index at 1M runs). How a run counts is one SQL function shared with stale-run
recovery and rebuilds (``jarvis_usage_rollup_add``, migration 0010).
"""

from __future__ import annotations

from jarvis.clock import Clock
from jarvis.db.tables import AgentRun
from jarvis.db.uow import UnitOfWork
from jarvis.llm.base import Usage
from jarvis.services.pricing.cache import PriceCache
from jarvis.services.pricing.rules import run_cost
from jarvis.services.pricing.views import RunCost


class RunRecorder:
    """Prices finished runs and keeps the rollups current (``Services.run_recorder``)."""

    def __init__(self, clock: Clock, prices: PriceCache | None = None) -> None:
        self._clock = clock
        self._prices = prices or PriceCache()

    def on_run_finished(self, uow: UnitOfWork, run: AgentRun) -> RunCost:
        """Price a run that just ended and add it to the rollups, in the caller's transaction.

        Set the run's final ``status``, tokens and ``finished_at`` and write its tool calls
        first; this sets ``total_tokens``, ``total_cost``, ``price_version`` and ``unpriced``
        with the price in force at ``finished_at``. Call exactly once per run, then commit."""
        usage = Usage(
            input_tokens=run.input_tokens or 0,
            output_tokens=run.output_tokens or 0,
            cache_read_tokens=run.cache_read_tokens or 0,
            cache_write_tokens=run.cache_write_tokens or 0,
        )
        run.total_tokens = usage.total_tokens
        if run.finished_at is None:
            run.finished_at = self._clock.now()
        # From the price cache (read without flushing the run: it is written once, with its
        # cost), so closing a run adds one round trip: the rollup.
        prices = self._prices.for_provider(uow, run.provider)
        cost = run_cost(prices, run.provider, run.model, usage, at=run.finished_at)
        run.total_cost = cost.cost
        run.price_version = cost.price_version
        run.unpriced = cost.unpriced
        if run.started_at is None:
            run.started_at = run.finished_at
        uow.usage.add_run_to_rollups(run)
        return cost
