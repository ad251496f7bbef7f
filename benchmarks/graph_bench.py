"""Neighbourhood queries on 100,000 entities / 1,000,000 relations.

Hubs: 10 entities with 13,000 out-edges each; the other 870,000 relations have skewed sources
(some busy nodes, many quiet ones) and uniform targets. For a hub and a leaf, depth 2 and 3,
both directions, capped at 500 nodes (the explorer's behaviour), we time:

* ours       ``KnowledgeGraphRepository.neighbourhood``: one recursive-CTE round trip (nodes,
             edges among them, truncated flag), as the app role with row-level security;
* per-node   the seed's approach: breadth-first, one query per visited node, same cap, then
             one query for the edges among the kept nodes;
* per-level  breadth-first with one ``= ANY(:frontier)`` query per level (for reference).

Run:  .venv/bin/python benchmarks/graph_bench.py  [--entities 100000 --relations 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from benchmarks._db import benchmark_database, percentile  # noqa: E402
from jarvis.db.engine import create_app_engine  # noqa: E402
from jarvis.db.repositories.knowledge_graph import KnowledgeGraphRepository  # noqa: E402
from jarvis.db.uow import UnitOfWorkFactory  # noqa: E402

CAP = 500
HUBS = 10
HUB_EDGES = 13_000
TYPES = ["knows", "works_at", "located_in", "part_of", "mentions", "owns", "likes", "related_to"]


def log(msg: str) -> None:
    print(msg, flush=True)


def load(owner: Any, entities: int, relations: int, hub_edges: int) -> uuid.UUID:
    t0 = time.perf_counter()
    with owner.begin() as conn:
        uid = conn.scalar(
            text(
                "INSERT INTO users (email, password_hash) VALUES ('graph@example.com', 'x') RETURNING id"
            )
        )
        conn.execute(
            text(
                "CREATE TEMP TABLE ents AS "
                "SELECT g AS n, gen_random_uuid() AS id FROM generate_series(0, :n - 1) g"
            ),
            {"n": entities},
        )
        conn.execute(text("CREATE UNIQUE INDEX ON ents (n)"))
        conn.execute(
            text(
                "INSERT INTO kg_entities (id, user_id, name, type) "
                "SELECT id, :u, 'entity ' || n, (ARRAY['person','company','city','project','topic'])[1 + n % 5] "
                "FROM ents"
            ),
            {"u": uid},
        )
        conn.execute(
            text(
                """
            INSERT INTO kg_relations (user_id, source_id, target_id, type)
            SELECT :u, s.id, t.id, (CAST(:types AS text[]))[1 + (p.g % 8)]
            FROM (
                SELECT g % :hubs AS s_n, floor(random() * :n)::int AS t_n, g
                FROM generate_series(1, :hub_edges) g
                UNION ALL
                SELECT :hubs + floor(power(random(), 3) * (:n - :hubs))::int,
                       floor(random() * :n)::int, g
                FROM generate_series(1, :rest) g
            ) p
            JOIN ents s ON s.n = p.s_n JOIN ents t ON t.n = p.t_n
            """
            ),
            {
                "u": uid,
                "types": TYPES,
                "hubs": HUBS,
                "n": entities,
                "hub_edges": HUBS * hub_edges,
                "rest": relations - HUBS * hub_edges,
            },
        )
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE kg_entities"))
        conn.execute(text("VACUUM ANALYZE kg_relations"))
    log(
        f"loaded {entities:,} entities / {relations:,} relations in {time.perf_counter() - t0:.1f} s"
    )
    return uid


def per_node_bfs(session: Session, root: uuid.UUID, depth: int) -> tuple[int, int]:
    """The seed's approach: one query per visited node, level by level, capped.
    Returns (nodes, queries)."""
    seen = {root}
    frontier = [root]
    queries = 2
    for _ in range(depth):
        nxt: list[uuid.UUID] = []
        for node in frontier:
            queries += 1
            for s, t in session.execute(
                text(
                    "SELECT source_id, target_id FROM kg_relations WHERE source_id = :n OR target_id = :n"
                ),
                {"n": node},
            ):
                other = t if s == node else s
                if other not in seen and len(seen) < CAP:
                    seen.add(other)
                    nxt.append(other)
            if len(seen) >= CAP:
                break
        frontier = nxt
        if len(seen) >= CAP:
            break
    ids = list(seen)
    session.execute(
        text(
            "SELECT id, source_id, target_id, type FROM kg_relations "
            "WHERE source_id = ANY(:ids) AND target_id = ANY(:ids)"
        ),
        {"ids": ids},
    ).all()
    session.execute(
        text("SELECT id, name, type FROM kg_entities WHERE id = ANY(:ids)"), {"ids": ids}
    ).all()
    return len(seen), queries


def per_level_bfs(session: Session, root: uuid.UUID, depth: int) -> int:
    seen = {root}
    frontier = [root]
    for _ in range(depth):
        if len(seen) >= CAP or not frontier:
            break
        rows = session.execute(
            text(
                "SELECT source_id, target_id FROM kg_relations WHERE source_id = ANY(:f) "
                "UNION ALL SELECT target_id, source_id FROM kg_relations WHERE target_id = ANY(:f)"
            ),
            {"f": frontier},
        ).all()
        nxt = []
        for _, other in rows:
            if other not in seen and len(seen) < CAP:
                seen.add(other)
                nxt.append(other)
        frontier = nxt
    ids = list(seen)
    session.execute(
        text(
            "SELECT id, source_id, target_id, type FROM kg_relations "
            "WHERE source_id = ANY(:ids) AND target_id = ANY(:ids)"
        ),
        {"ids": ids},
    ).all()
    session.execute(
        text("SELECT id, name, type FROM kg_entities WHERE id = ANY(:ids)"), {"ids": ids}
    ).all()
    return len(seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--relations", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--hub-edges", type=int, default=HUB_EDGES)
    args = parser.parse_args()
    with benchmark_database() as settings:
        owner = create_engine(settings.owner_url())
        uid = load(owner, args.entities, args.relations, args.hub_edges)
        with owner.connect() as conn:
            hub = conn.scalar(
                text(
                    "SELECT source_id FROM kg_relations GROUP BY source_id ORDER BY count(*) DESC LIMIT 1"
                )
            )
            hub_degree = conn.scalar(
                text("SELECT count(*) FROM kg_relations WHERE source_id = :h OR target_id = :h"),
                {"h": hub},
            )
            leaf = conn.scalar(
                text(
                    "SELECT e.id FROM kg_entities e WHERE NOT EXISTS (SELECT 1 FROM kg_relations r "
                    "WHERE r.source_id = e.id) ORDER BY e.name LIMIT 1"
                )
            )
            leaf_degree = conn.scalar(
                text("SELECT count(*) FROM kg_relations WHERE target_id = :h"), {"h": leaf}
            )
        log(f"hub degree {hub_degree:,}; leaf degree {leaf_degree}")
        app = create_app_engine(settings)
        uow = UnitOfWorkFactory(app)
        log("")
        log(
            f"{'start':<6} {'depth':>5} {'method':<28} {'p50 ms':>8} {'p95 ms':>8} {'nodes':>6} {'queries':>8}"
        )
        for name, root in (("hub", hub), ("leaf", leaf)):
            for depth in (2, 3):
                timings: dict[str, list[float]] = {
                    "ours (recursive CTE)": [],
                    "per-node BFS (seed)": [],
                    "per-level BFS": [],
                }
                nodes: dict[str, int] = {}
                truncated = False
                for _ in range(args.repeat):
                    with uow.for_user_id(uid) as w:
                        w.session.execute(text("SELECT 1"))
                        repo = KnowledgeGraphRepository(w.session)
                        t0 = time.perf_counter()
                        res = repo.neighbourhood(
                            root,
                            depth=depth,
                            direction="both",
                            types=[],
                            as_of=None,
                            node_limit=CAP,
                            edge_limit=CAP * 5,
                        )
                        timings["ours (recursive CTE)"].append((time.perf_counter() - t0) * 1000)
                        nodes["ours (recursive CTE)"] = len(res.nodes)
                        truncated = res.seen > CAP
                        t0 = time.perf_counter()
                        nodes["per-node BFS (seed)"], node_queries = per_node_bfs(
                            w.session, root, depth
                        )
                        timings["per-node BFS (seed)"].append((time.perf_counter() - t0) * 1000)
                        t0 = time.perf_counter()
                        nodes["per-level BFS"] = per_level_bfs(w.session, root, depth)
                        timings["per-level BFS"].append((time.perf_counter() - t0) * 1000)
                queries = {
                    "ours (recursive CTE)": "1",
                    "per-node BFS (seed)": str(node_queries),
                    "per-level BFS": f"<={depth + 2}",
                }
                for method, ms in timings.items():
                    log(
                        f"{name:<6} {depth:>5} {method:<28} {percentile(ms, 50):8.2f} {percentile(ms, 95):8.2f} "
                        f"{nodes[method]:>6} {queries[method]:>8}"
                    )
                ours = percentile(timings["ours (recursive CTE)"], 50)
                log(
                    f"       ratio per-node/ours = {percentile(timings['per-node BFS (seed)'], 50) / ours:.1f}x, "
                    f"per-level/ours = {percentile(timings['per-level BFS'], 50) / ours:.1f}x, "
                    f"truncated={truncated}"
                )
        app.dispose()
        owner.dispose()


if __name__ == "__main__":
    main()
