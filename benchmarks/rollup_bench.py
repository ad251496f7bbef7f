"""Keeping the usage rollup current: the database time of adding one finished run to the rollups
(``jarvis_usage_rollup_add``, called by every run's close inside ``jarvis_finish_run``), 0010's
rule against 0016's (its path for one run), interleaved in one database so load hits both alike.
Timed as EXPLAIN ANALYZE execution time (triggers included, no round trip), as the app role.

Run:  .venv/bin/python benchmarks/rollup_bench.py    (target, issue 16: <= 0.5 ms per run)
"""

import importlib.util
import statistics
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import text

from benchmarks._db import benchmark_database
from jarvis.bootstrap import build_services
from jarvis.db.engine import create_owner_engine

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("m16", ROOT / "migrations/versions/0016_perf_runs.py")
m16 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m16)
old = m16.OLD_ROLLUP.replace(
    "FUNCTION jarvis_usage_rollup_add(", "FUNCTION jarvis_usage_rollup_add_0010("
)
N = 300
with benchmark_database() as settings:
    owner = create_owner_engine(settings)
    with owner.begin() as c:
        c.execute(text(old))
        c.execute(
            text(
                f'GRANT EXECUTE ON FUNCTION jarvis_usage_rollup_add_0010(uuid[], date) TO "{settings.db_app_role}"'
            )
        )
    services = build_services(settings, background=False)
    who = services.accounts.register("r@example.com", "benchmark pw 123", "R")
    conv = services.conversations.create(who, provider="offline", model="offline")
    times = {"0010": [], "0016": []}
    with services.engine.connect() as c:
        c.execute(text("select set_config('app.user_id', :u, false)"), {"u": str(who.user_id)})
        ids = [uuid.uuid4() for _ in range(2 * N + 40)]
        now = datetime.now(UTC)
        for i in ids:
            c.execute(
                text(
                    "insert into agent_runs (id, user_id, conversation_id, provider, model, status, input_tokens, output_tokens, total_tokens, total_cost, started_at, finished_at) values (:i, :u, :c, 'openai', 'gpt-4o-mini', 'completed', 1200, 300, 1500, 0.0004, :n, :n)"
                ),
                {"i": i, "u": who.user_id, "c": conv.id, "n": now},
            )
        c.commit()
        for k, i in enumerate(ids):
            fn = "jarvis_usage_rollup_add_0010" if k % 2 else "jarvis_usage_rollup_add"
            plan = (
                c.execute(
                    text(f"EXPLAIN (ANALYZE, TIMING OFF) SELECT {fn}(ARRAY[CAST(:i AS uuid)])"),
                    {"i": i},
                )
                .scalars()
                .all()
            )
            c.commit()
            ms = float(
                [line for line in plan if "Execution Time" in line][0].split(":")[1].split()[0]
            )
            if k >= 40:
                times["0010" if k % 2 else "0016"].append(ms)
    for v, t in times.items():
        print(
            f"  rollup of one finished run, {v} rule: median {statistics.median(t):.3f} ms (server execution, {len(t)} runs)"
        )
    services.engine.dispose()
    owner.dispose()
