"""The capped neighbourhood's plan kept by the connection vs planned for every call (not a test).

``jarvis_kg_neighbourhood`` (migrations 0023, 0029) is a SQL function with
``plan_cache_mode = force_generic_plan``: one plan, made on a connection's first call, for every
root, depth, direction, filter and cap. This runs a mix of neighbourhoods on the graph benchmark's
data (100k entities / 500k relations; random roots, the busiest sources, a leaf; depth 1-3; every
direction; with and without a type and a date filter; caps 50-2,000) both ways, alternating:

* kept      the function, as the repository calls it;
* planned   the function's own statement sent as text, so PostgreSQL plans it for the
            arguments of each call (what the repository did before 0023).

Both must return the same row; the figures are the best of three calls each, summed, and the
neighbourhoods where the kept plan did worst.

    .venv/bin/python benchmarks/graph_plan_bench.py --keep /tmp/jarvis-graph-bench   # reuse data
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks._db import benchmark_database  # noqa: E402
from benchmarks.graph_bench import load  # noqa: E402
from jarvis.db.engine import create_app_engine  # noqa: E402
from jarvis.db.repositories.knowledge_graph import _NEIGHBOURHOOD, _walk_params  # noqa: E402
from jarvis.db.uow import UnitOfWorkFactory  # noqa: E402

CAPS = [50, 200, 500, 1000, 2000]


def planned_statement(owner: Any) -> Any:
    """The function's statement, as the database holds it (its latest migration's text), with
    its arguments as bind parameters."""
    with owner.connect() as conn:
        body = conn.scalar(
            text("SELECT prosrc FROM pg_proc WHERE proname = 'jarvis_kg_neighbourhood'")
        )
    names = {
        "p_root": "CAST(:root AS uuid)",
        "p_depth": ":depth",
        "p_out": ":follow_out",
        "p_in": ":follow_in",
        "p_types": "CAST(:types AS text[])",
        "p_as_of": "CAST(:as_of AS timestamptz)",
        "p_node_limit": ":node_limit",
        "p_edge_limit": ":edge_limit",
    }
    body = re.sub(
        r"\bp_(root|depth|out|in|types|as_of|node_limit|edge_limit)\b", lambda m: names[m[0]], body
    )
    return text(body).bindparams(*_NEIGHBOURHOOD._bindparams.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--relations", type=int, default=500_000)
    parser.add_argument("--roots", type=int, default=25, help="random roots (plus 10 busy, 1 leaf)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", help="reuse (and keep) the database in this folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with benchmark_database(args.keep) as settings:
        owner = create_engine(settings.owner_url())
        uid = load(owner, args.entities, args.relations, 7_700)
        with owner.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT id FROM kg_entities ORDER BY id"))]
            busy = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT source_id FROM kg_relations GROUP BY 1 ORDER BY count(*) DESC LIMIT 30"
                    )
                )
            ]
            leaf = conn.scalar(
                text(
                    "SELECT e.id FROM kg_entities e WHERE NOT EXISTS (SELECT 1 FROM kg_relations r "
                    "WHERE r.source_id = e.id) ORDER BY e.name LIMIT 1"
                )
            )
        planned = planned_statement(owner)
        owner.dispose()
        roots: list[uuid.UUID] = [*rng.sample(ids, args.roots), *busy[0:30:3], leaf]
        uow = UnitOfWorkFactory(create_app_engine(settings))
        kept = _NEIGHBOURHOOD
        totals = {"kept": 0.0, "planned": 0.0}
        rows: list[tuple[float, float, float, str]] = []
        for root in roots:
            for depth in (1, 2, 3):
                for direction in ("both", "out", "in"):
                    types = rng.choice([[], [], ["knows", "likes"]])
                    as_of = rng.choice([None, None, datetime(2027, 1, 1, tzinfo=UTC)])
                    cap = rng.choice(CAPS)
                    params = {
                        **_walk_params(root, direction, types, as_of),  # type: ignore[arg-type]
                        "depth": depth,
                        "node_limit": cap,
                        "edge_limit": cap * 5 + 1,
                    }
                    best = {"kept": float("inf"), "planned": float("inf")}
                    results: dict[str, Any] = {}
                    for _ in range(3):
                        for name, statement in rng.sample(
                            [("kept", kept), ("planned", planned)], 2
                        ):
                            with uow.for_user_id(uid) as w:
                                w.session.execute(text("SELECT 1"))  # begin, set the user
                                t0 = time.perf_counter()
                                row = w.session.execute(statement, params).one()
                                best[name] = min(best[name], (time.perf_counter() - t0) * 1000)
                            results[name] = (
                                row.seen,
                                row.nodes,
                                sorted(map(str, json.loads(row.edges))),
                            )
                    assert results["kept"] == results["planned"], (root, depth, direction, cap)
                    for name in totals:
                        totals[name] += best[name]
                    nodes = len(json.loads(results["kept"][1]))
                    label = f"depth {depth} {direction} cap {cap} ({nodes} nodes)"
                    rows.append(
                        (best["kept"] / best["planned"], best["planned"], best["kept"], label)
                    )
        rows.sort()
        print(
            f"{len(rows)} neighbourhoods, same rows both ways; planned for each call "
            f"{totals['planned']:,.0f} ms, plan kept {totals['kept']:,.0f} ms "
            f"= {totals['planned'] / totals['kept']:.2f}x faster in all"
        )
        for ratio, a, b, label in rows[:3]:
            print(f"  best:  {label}: {a:.1f} -> {b:.1f} ms ({ratio:.2f}x the time)")
        for ratio, a, b, label in rows[-3:]:
            print(f"  worst: {label}: {a:.1f} -> {b:.1f} ms ({ratio:.2f}x the time)")


if __name__ == "__main__":
    main()
