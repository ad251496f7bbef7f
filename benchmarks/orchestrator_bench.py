"""Orchestrator overhead per turn with the offline model, database writes included.

Each turn is a full agent run through ``RunService.run`` on a throwaway embedded PostgreSQL as
the app role (row-level security on): guards (rate limit, budget, concurrency under the
advisory lock), the user's message and run row committed, memory retrieval, the model, each
tool call committed, pricing, the run closed with the usage rollup. The offline provider is
wrapped to time the calls into it; everything else is "outside the provider" (orchestrator +
tools + database).

Run:  .venv/bin/python benchmarks/orchestrator_bench.py  [--turns 200 --warmup 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._db import benchmark_database, percentile  # noqa: E402
from jarvis.bootstrap import build_services  # noqa: E402
from jarvis.identity import Principal  # noqa: E402
from jarvis.llm.base import ChatMessage, LLMProvider, StreamEvent, ToolDefinition  # noqa: E402
from jarvis.llm.factory import ProviderChoice  # noqa: E402
from jarvis.llm.offline import OFFLINE_MODEL, OfflineProvider  # noqa: E402

PROMPTS = {
    "no tool": "hello, how are you today",
    "calculator": "what is 12 * (3 + 4) - 5",
    "memory_store": "remember that my favourite colour is blue {n}",
    "memory_search+kg": "what do you know about blue",
    "current_time": "what time is it",
}
TURNS_PER_CONVERSATION = 10


class TimedProvider:
    """Wraps a provider; adds the time spent producing its events to ``self.seconds``."""

    def __init__(self, inner: LLMProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0

    def stream(
        self,
        messages: list[ChatMessage],
        tools: list[ToolDefinition],
        *,
        model: str,
        max_tokens: int | None = None,
    ) -> Iterator[StreamEvent]:
        started = time.perf_counter()
        iterator = iter(self.inner.stream(messages, tools, model=model, max_tokens=max_tokens))
        self.seconds += time.perf_counter() - started
        while True:
            started = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield item


class TimedProviders:
    def __init__(self) -> None:
        self.provider = TimedProvider(OfflineProvider())

    def for_user(self, principal: Principal, provider: str) -> LLMProvider:
        return self.provider

    def usable_providers(self, principal: Principal) -> list[ProviderChoice]:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--turns", type=int, default=200, help="measured turns (spread over prompts)"
    )
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    with benchmark_database() as base:
        settings = base.model_copy(update={"messages_per_minute": 1_000_000})
        providers = TimedProviders()
        services = build_services(settings, providers=providers)
        # The run service takes the providers from build_services' overrides.
        conversations, runs = services.conversations, services.runs
        principal = services.accounts.register("bench@example.com", "benchmark password", "Bench")
        kinds = list(PROMPTS)
        totals: dict[str, list[float]] = {k: [] for k in kinds}
        provider_ms: dict[str, list[float]] = {k: [] for k in kinds}
        conversation = None
        for n in range(args.warmup + args.turns):
            if n % TURNS_PER_CONVERSATION == 0:
                conversation = conversations.create(
                    principal, provider="offline", model=OFFLINE_MODEL
                )
            assert conversation is not None
            kind = kinds[n % len(kinds)]
            prompt = PROMPTS[kind].format(n=uuid.uuid4().hex[:6])
            providers.provider.seconds = 0.0
            started = time.perf_counter()
            events = list(runs.run(principal, conversation.id, prompt))
            elapsed = time.perf_counter() - started
            if events[-1].type != "run_completed":
                raise SystemExit(f"turn {n} ({kind}) ended with {events[-1].to_json()}")
            if n >= args.warmup:
                totals[kind].append(elapsed * 1000)
                provider_ms[kind].append(providers.provider.seconds * 1000)

        print(
            f"{args.turns} turns with the offline model ({args.warmup} warm-up turns not counted)"
        )
        print(f"{'turn':<18}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'provider ms':>13}{'outside':>10}")
        all_total: list[float] = []
        all_provider: list[float] = []
        for kind in kinds:
            t, p = totals[kind], provider_ms[kind]
            all_total += t
            all_provider += p
            share = 1 - sum(p) / sum(t)
            print(
                f"{kind:<18}{len(t):>5}{percentile(t, 50):>10.1f}{percentile(t, 95):>10.1f}"
                f"{statistics.mean(p):>13.2f}{share:>10.1%}"
            )
        share = 1 - sum(all_provider) / sum(all_total)
        print(
            f"{'all':<18}{len(all_total):>5}{percentile(all_total, 50):>10.1f}"
            f"{percentile(all_total, 95):>10.1f}{statistics.mean(all_provider):>13.2f}{share:>10.1%}"
        )
        services.engine.dispose()


if __name__ == "__main__":
    main()
