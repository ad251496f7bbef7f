"""Chat runs on the server, measured (offline model, throwaway embedded PostgreSQL, app role).

1. Bookkeeping per turn: a tool-free offline turn (admission, memory retrieval, the model, the
   event log, closing with cost and rollups), executed inline so the call times exactly the
   turn; round trips counted on the wire (libpq trace: one ``ReadyForQuery`` per round trip).
   Every turn type is measured too. "Overhead" is the turn minus the time inside the model.
   The first user has no memories while the tool-free turns are measured (admission says so
   and the turn skips memory retrieval, as for every new user); "no tool, has memories" is
   the same turn once ``memory_store`` gave them some (search plan, embedding and search).
   Targets (issue 12): <= 5 ms p50 and <= 12 round trips for the tool-free turn.
2. Throughput: 20 users at once, each sending turns back to back (start, then follow the run's
   log to its end) through the real worker pool; then the invariants are checked. Targets:
   >= 150 turns/s, p95 <= 250 ms, 0 errors.
3. An event reaching a follower in another process (LISTEN/NOTIFY), produced -> received.
4. Re-attaching to a run of 1,000 events: replay the log and fold it for the page.

Run:  .venv/bin/python benchmarks/runs_bench.py  [--turns 300 --users 20 --per-user 25]

Ratios are against the figures measured on the page-driven engine (PERFORMANCE.md, 2026-12-02):
24 ms p50 / 35 ms p95 per turn (17.0 ms tool-free), ~85 round trips, 49 turns/s at 20 users
(p95 754 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, text  # noqa: E402

from benchmarks._db import benchmark_database, percentile  # noqa: E402
from jarvis.bootstrap import Services, build_services  # noqa: E402
from jarvis.config import Settings  # noqa: E402
from jarvis.db.engine import create_owner_engine  # noqa: E402
from jarvis.db.repositories.run_log import LoggedEvent  # noqa: E402
from jarvis.identity import Principal  # noqa: E402
from jarvis.llm.base import (  # noqa: E402
    ChatMessage,
    Finished,
    LLMProvider,
    StreamEvent,
    TextDelta,
    ToolDefinition,
    Usage,
    UsageReport,
)
from jarvis.llm.factory import ProviderChoice  # noqa: E402
from jarvis.llm.offline import OFFLINE_MODEL, OfflineProvider  # noqa: E402
from jarvis.services.chat import events as ev  # noqa: E402
from jarvis.ui.run_view import RunProgress  # noqa: E402

BEFORE = {"p50": 17.0, "p95": 35.0, "rt": 85.0, "tps": 49.0, "p95_load": 754.0}
PROMPTS = {
    "no tool": "hello, how are you today",
    "calculator": "what is 12 * (3 + 4) - 5",
    "memory_store": "remember that my favourite colour is blue {n}",
    "memory_search+kg": "what do you know about blue",
    "current_time": "what time is it",
    "no tool, has memories": "hello, how are you today",
}


class TimedProvider:
    """The offline model, timing the calls into it (``seconds``)."""

    def __init__(self, inner: LLMProvider) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "offline")
        self.seconds = 0.0
        self._lock = threading.Lock()

    def stream(
        self,
        messages: list[ChatMessage],
        tools: list[ToolDefinition],
        *,
        model: str,
        max_tokens: int | None = None,
    ) -> Iterator[StreamEvent]:
        spent = 0.0
        started = time.perf_counter()
        iterator = iter(self.inner.stream(messages, tools, model=model, max_tokens=max_tokens))
        spent += time.perf_counter() - started
        try:
            while True:
                started = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    spent += time.perf_counter() - started
                    return
                spent += time.perf_counter() - started
                yield item
        finally:
            with self._lock:
                self.seconds += spent


class Providers:
    def __init__(self, provider: LLMProvider) -> None:
        self.provider = provider

    def for_user(
        self, principal: Principal, provider: str, *, deadline: float | None = None
    ) -> LLMProvider:
        return self.provider

    def usable_providers(self, principal: Principal) -> list[ProviderChoice]:
        return []


class Timestamps:
    """A model streaming ``t=<wall time>`` every ``every`` seconds (latency across processes)."""

    name = "offline"

    def __init__(self, count: int, every: float) -> None:
        self.count, self.every = count, every

    def stream(
        self,
        messages: list[ChatMessage],
        tools: list[ToolDefinition],
        *,
        model: str,
        max_tokens: int | None = None,
    ) -> Iterator[StreamEvent]:
        for _ in range(self.count):
            time.sleep(self.every)
            yield TextDelta(f"t={time.time():.6f};")
        yield UsageReport(Usage(1, self.count))
        yield Finished("stop")


_ADMINS: list[Principal] = []


def user(services: Services, n: int) -> Principal:
    """A new account: the first is the administrator, who registers the others (sign-up is
    closed once an account exists)."""
    email, password = f"bench{n}-{uuid.uuid4().hex[:6]}@example.com", "benchmark pw 123"
    if not services.accounts.has_users():
        _ADMINS[:] = [services.accounts.register(email, password, f"B{n}")]
        return _ADMINS[0]
    return services.accounts.register(email, password, f"B{n}", actor=_ADMINS[0])


# -- 1. bookkeeping per turn ---------------------------------------------------------------------


def bookkeeping(settings: Settings, turns: int) -> dict[str, float]:
    model = TimedProvider(OfflineProvider())
    services = build_services(settings, providers=Providers(model), background=False)
    trace_path = Path(tempfile.mkstemp(prefix="jarvis-rt-")[1])
    trace = open(trace_path, "w")  # noqa: SIM115 - closed below
    tracing = threading.Event()

    @event.listens_for(services.engine, "connect")
    def _trace(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.pgconn.trace(trace.fileno())
        dbapi_conn.pgconn.set_trace_flags(2)  # suppress timestamps

    services.engine.dispose()  # every connection from now on is traced
    who = user(services, 0)
    results: dict[str, float] = {}
    for kind, prompt in PROMPTS.items():
        conv = services.conversations.create(who, provider="offline", model=OFFLINE_MODEL)
        for n in range(5):  # warm-up: plans cached, connections open
            services.runs.start(who, conv.id, prompt.format(n=n))
        times: list[float] = []
        before_rt = _round_trips(trace, trace_path)
        count = turns if kind == "no tool" else max(20, turns // 5)
        for n in range(count):
            if n % 10 == 0:  # keep the conversation (its history) small and alike
                conv = services.conversations.create(who, provider="offline", model=OFFLINE_MODEL)
            model.seconds = 0.0
            began = time.perf_counter()
            services.runs.start(who, conv.id, prompt.format(n=n))
            times.append((time.perf_counter() - began - model.seconds) * 1000)
        rt = (_round_trips(trace, trace_path) - before_rt) / count
        results[f"{kind}.p50"] = percentile(times, 50)
        results[f"{kind}.p95"] = percentile(times, 95)
        results[f"{kind}.rt"] = rt
        print(
            f"  {kind:<22} overhead p50 {percentile(times, 50):6.2f} ms  p95 "
            f"{percentile(times, 95):6.2f} ms  round trips/turn {rt:5.1f}  ({count} turns)"
        )
    tracing.set()
    trace.close()
    trace_path.unlink(missing_ok=True)
    services.engine.dispose()
    return results


def _round_trips(trace, path: Path) -> int:  # type: ignore[no-untyped-def]
    trace.flush()
    with open(path) as f:
        return sum(1 for line in f if "\tReadyForQuery\t" in line)


# -- 2. throughput -------------------------------------------------------------------------------


def throughput(settings: Settings, users: int, per_user: int) -> dict[str, float]:
    services = build_services(settings, providers=Providers(OfflineProvider()))
    people = [user(services, n) for n in range(users)]
    convs = [
        services.conversations.create(p, provider="offline", model=OFFLINE_MODEL) for p in people
    ]
    for p, c in zip(people, convs, strict=True):  # warm every user's path once
        list(services.runs.run(p, c.id, "hello"))
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(users)

    def work(n: int) -> None:
        who, conv = people[n], convs[n]
        barrier.wait()
        for i in range(per_user):
            began = time.perf_counter()
            try:
                started = services.runs.start(who, conv.id, PROMPTS["no tool"] + f" {i}")
                last = None
                for followed in services.runs.follow(who, started.run_id):
                    last = followed.event
                if not isinstance(last, ev.RunCompleted):
                    raise RuntimeError(f"ended with {last}")
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(users)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    tps = len(latencies) / elapsed
    print(
        f"  {users} users x {per_user} turns: {tps:6.1f} turns/s  latency p50 "
        f"{percentile(latencies, 50):6.1f} ms  p95 {percentile(latencies, 95):6.1f} ms  "
        f"errors {len(errors)}"
    )
    for e in errors[:5]:
        print("   ", e)
    services.shutdown()
    services.engine.dispose()
    _check_invariants(settings, len(people) * (per_user + 1))
    return {
        "tps": tps,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "errors": float(len(errors)),
    }


def _check_invariants(settings: Settings, expected_runs: int) -> None:
    owner = create_owner_engine(settings)
    with owner.connect() as c:
        runs = c.scalar(text("select count(*) from agent_runs"))
        questions = c.scalar(text("select count(*) from messages where role = 'user'"))
        one_each = c.scalar(
            text(
                "select count(*) from agent_runs r where (select count(*) from messages m"
                " where m.run_id = r.id and m.role = 'user') <> 1"
            )
        )
        running = c.scalar(text("select count(*) from agent_runs where status = 'running'"))
        mismatched = c.scalar(
            text(
                "select count(*) from (select user_id, sum(runs) n, sum(total_tokens) t"
                " from usage_daily group by user_id) d full join (select user_id, count(*) n,"
                " sum(total_tokens) t from agent_runs where status <> 'running' group by user_id)"
                " r using (user_id) where d.n is distinct from r.n or d.t is distinct from r.t"
            )
        )
        over_budget = c.scalar(
            text(
                "select count(*) from users u where (select coalesce(sum(cost), 0)"
                " from usage_daily d where d.user_id = u.id) > coalesce(u.monthly_budget_usd, 20)"
            )
        )
    owner.dispose()
    ok = (
        runs == questions
        and one_each == 0
        and running == 0
        and mismatched == 0
        and over_budget == 0
        and runs is not None
        and runs >= expected_runs
    )
    print(
        f"  invariants: {runs} runs for {questions} questions, runs without exactly one "
        f"question {one_each}, left running {running}, rollup mismatches {mismatched}, "
        f"users over budget {over_budget}: {'OK' if ok else 'BROKEN'}"
    )
    if not ok:
        raise SystemExit("invariants broken")


# -- 3. an event in another process --------------------------------------------------------------

FOLLOWER = textwrap.dedent(
    """
    import json, sys, time, uuid
    from jarvis.bootstrap import build_services
    from jarvis.config import load_settings
    from jarvis.identity import Principal
    s = load_settings(**json.loads(sys.argv[1]))
    services = build_services(s)
    who = Principal(user_id=uuid.UUID(sys.argv[2]), email="f@example.com")
    services.notifier.wait_until_listening(10)
    print("ready", flush=True)
    run_id = uuid.UUID(sys.stdin.readline().strip())
    for f in services.runs.follow(who, run_id):
        now = time.time()
        if f.event.type == "text_delta":
            for part in f.event.text.split(";"):
                if part.startswith("t="):
                    print(now - float(part[2:]), flush=True)
    print("end", flush=True)
    services.shutdown()
    """
)


def cross_process(settings: Settings, events: int) -> dict[str, float]:
    services = build_services(settings, providers=Providers(Timestamps(events, 0.1)))
    who = user(services, 999)
    conv = services.conversations.create(who, provider="offline", model=OFFLINE_MODEL)
    args = {
        "env": "test",
        "database_url": settings.database_url,
        "data_dir": str(settings.data_dir),
        "master_key": settings.master_key,
        "jwt_secret": settings.jwt_secret,
        "db_app_password": settings.db_app_password,
    }
    follower = subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, json.dumps(args), str(who.user_id)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ},
    )
    assert follower.stdout is not None and follower.stdin is not None
    assert follower.stdout.readline().strip() == "ready"
    started = services.runs.start(who, conv.id, "stream timestamps")
    follower.stdin.write(f"{started.run_id}\n")
    follower.stdin.flush()
    delays: list[float] = []
    for line in follower.stdout:
        if line.strip() == "end":
            break
        delays.append(float(line) * 1000)
    follower.wait(30)
    services.shutdown()
    services.engine.dispose()
    p50, p95 = percentile(delays, 50), percentile(delays, 95)
    print(
        f"  produced -> received in another process: p50 {p50:5.1f} ms  p95 {p95:5.1f} ms"
        f"  ({len(delays)} events, one every 100 ms)"
    )
    return {"p50": p50, "p95": p95}


# -- 4. re-attach ---------------------------------------------------------------------------------


def reattach(settings: Settings, events: int) -> dict[str, float]:
    hold = threading.Event()

    class Holding:
        name = "offline"

        def stream(self, messages, tools, *, model, max_tokens=None):  # type: ignore[no-untyped-def]
            yield TextDelta("start ")
            hold.wait(120)
            yield UsageReport(Usage(1, 1))
            yield Finished("stop")

    services = build_services(settings, providers=Providers(Holding()))  # type: ignore[arg-type]
    who = user(services, 1000)
    conv = services.conversations.create(who, provider="offline", model=OFFLINE_MODEL)
    started = services.runs.start(who, conv.id, "a long one")
    time.sleep(0.3)
    have = services.runs.events(who, started.run_id)
    seq = have[-1].seq
    # Written far ahead of the run's own sequence numbers, so its last events (usage, the
    # end) still fit below them when the model is released.
    batch = [
        LoggedEvent(
            10_000 + i,
            "text_delta" if i % 10 else "tool_call_started",
            ev.TextDelta(started.run_id, f"chunk {i} of a long answer. ").to_dict()
            if i % 10
            else ev.ToolCallStarted(started.run_id, f"c{i}", "calculator", {"x": i}).to_dict(),
        )
        for i in range(events - seq)
    ]
    with services.uow.statements(who) as u:
        u.run_log.append(who.user_id, started.run_id, batch)
        u.commit()
    times: list[float] = []
    count = 0
    for _ in range(30):
        began = time.perf_counter()
        progress = RunProgress()
        count = 0
        for followed in services.runs.events(who, started.run_id):
            progress.apply(followed.event, followed.seq)
            count += 1
        times.append((time.perf_counter() - began) * 1000)
    hold.set()
    list(services.runs.follow(who, started.run_id))
    services.shutdown()
    services.engine.dispose()
    print(
        f"  replay + fold of {count} events: p50 {percentile(times, 50):5.1f} ms  "
        f"p95 {percentile(times, 95):5.1f} ms"
    )
    return {"p50": percentile(times, 50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=25)
    args = parser.parse_args()
    with benchmark_database() as base:
        settings = base.model_copy(
            update={"messages_per_minute": 1_000_000, "default_monthly_budget_usd": 1000.0}
        )
        print("1. bookkeeping per turn (offline model, inline, wire round trips)")
        one = bookkeeping(settings, args.turns)
        print("2. throughput")
        two = throughput(settings, args.users, args.per_user)
        print("3. an event in another process")
        three = cross_process(settings, 100)
        print("4. re-attach")
        four = reattach(settings, 1000)
    print()
    print("summary (before: the page-driven engine, PERFORMANCE.md)")
    print(
        f"  tool-free turn overhead p50 {one['no tool.p50']:.2f} ms (before 17.0 ms: "
        f"{BEFORE['p50'] / one['no tool.p50']:.1f}x less), round trips {one['no tool.rt']:.1f} "
        f"(before ~85: {BEFORE['rt'] / one['no tool.rt']:.1f}x fewer)"
    )
    print(
        f"  {args.users} users: {two['tps']:.0f} turns/s (before 49: {two['tps'] / BEFORE['tps']:.1f}x),"
        f" p95 {two['p95']:.0f} ms (before 754 ms), errors {two['errors']:.0f}"
    )
    print(f"  cross-process event p95 {three['p95']:.1f} ms (target 50)")
    print(f"  re-attach to 1,000 events {four['p50']:.1f} ms (target 200)")


if __name__ == "__main__":
    main()
