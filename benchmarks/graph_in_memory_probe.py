"""A design probe, not the product: the capped neighbourhood answered from the user's graph held
in this process, against the product's one statement (not a test; not in ``make bench``).

Issue 16's capped targets (hub depth 2: cap 500 <= 5 ms, cap 2,000 <= 30 ms) were not met by
the statement (benchmarks/MEMORY_AND_GRAPH.md: its time is spread over the walk, the rows, the
relations among the kept nodes and their JSON text). This measures the design change proposed
there before anyone builds it:

* load   the user's graph, as the app role (row-level security), in one REPEATABLE READ
         transaction: entities (id, name, type, description, properties) in (name, id) order,
         so a node's number is its rank and "a level's first names" are its smallest numbers;
         relations as fixed-width binary ``COPY`` rows read into numpy arrays (ids, ends, type
         code, weight, validity), then both directions' adjacency as CSR arrays sorted by rank;
* query  one round trip that a version check would cost (an indexed one-row read in a unit of
         work, as the app role), then the walk on the arrays (per level: the frontier's slices
         gathered, filtered by type and date, visited nodes dropped, ``np.unique``; the first
         level over the cap keeps its smallest ranks, as ``jarvis_kg_walk`` keeps its first
         names), the relations among the kept nodes (their out-slices, the far end tested
         against a mask), and the same ``NodeRow`` / ``EdgeRow`` objects the repository builds;
* check  the same nodes in the same order, the same relation set (rows equal field by field),
         the same truncation flag as the service, over random roots, the hub and leaves,
         depths 1-3, every direction, caps 50-2,000, with and without a type filter and a date.

What is NOT built here and a real version needs: a per-user version bumped by statement-level
triggers (transition tables) on both graph tables, read in the request's unit of work; answering
from SQL while a stale graph reloads in the background; a memory budget with eviction; only a
user's own graph (admins read every user's rows under row-level security).

    .venv/bin/python benchmarks/graph_in_memory_probe.py --keep /tmp/jarvis-graph-bench

(``--keep``: the data graph_bench.py generated there; without it, generated first, ~1 min.)
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import uuid
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic_core import from_json  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks._db import benchmark_database  # noqa: E402
from jarvis.clock import SystemClock  # noqa: E402
from jarvis.db.engine import create_app_engine  # noqa: E402
from jarvis.db.repositories.knowledge_graph import (  # noqa: E402
    EdgeRow,
    KnowledgeGraphRepository,
    NodeRow,
)
from jarvis.db.uow import UnitOfWorkFactory  # noqa: E402
from jarvis.identity import Principal  # noqa: E402
from jarvis.llm.embedders import EmbedderRegistry, LexicalEmbedder  # noqa: E402
from jarvis.services.knowledge_graph import KnowledgeGraphQueries  # noqa: E402
from jarvis.services.memory.embeddings import UserEmbedders  # noqa: E402

# One relation as a binary COPY row: a field count, then each field's length and bytes.
_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l0", ">i4"), ("id", "V16"),
        ("l1", ">i4"), ("src", "S16"),
        ("l2", ">i4"), ("tgt", "S16"),
        ("l3", ">i4"), ("type", ">i4"),
        ("l4", ">i4"), ("weight", ">f8"),
        ("l5", ">i4"), ("vf", ">i8"),
        ("l6", ">i4"), ("vt", ">i8"),
        ("l7", ">i4"), ("plain", "?"),
    ]
)  # fmt: skip
_RELATIONS_COPY = """
COPY (SELECT id, source_id, target_id, array_position(%s::text[], type)::int4, weight,
             coalesce(valid_from, '-infinity'), coalesce(valid_to, 'infinity'),
             properties = '{}'::jsonb
      FROM kg_relations) TO STDOUT (FORMAT binary)"""
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's timestamps count from here
_NEG_INF, _POS_INF = np.iinfo(np.int64).min, np.iinfo(np.int64).max


def _ticks(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _time(ticks: int) -> datetime | None:
    if ticks in (_NEG_INF, _POS_INF):
        return None
    return _EPOCH + timedelta(microseconds=ticks)


_new_object = object.__new__
_set_int = uuid.UUID.__dict__["int"].__set__
_set_safety = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid(raw: bytes) -> uuid.UUID:
    """``uuid.UUID(bytes=raw)`` with its two slots set directly (the repository's trick)."""
    value = _new_object(uuid.UUID)
    _set_int(value, int.from_bytes(raw))
    _set_safety(value, _UNKNOWN)
    return value


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


class InMemoryGraph:
    """One user's graph as arrays (node number = rank by name, then id)."""

    def __init__(self, cursor: Any) -> None:
        t0 = time.perf_counter()
        cursor.execute(
            "SELECT id, name, type, coalesce(description, ''), properties::text "
            "FROM kg_entities ORDER BY name, id"
        )
        rows = cursor.fetchall()
        self.ids: list[uuid.UUID] = [r[0] for r in rows]
        self.names: list[str] = [r[1] for r in rows]
        self.types: list[str] = [r[2] for r in rows]
        self.descriptions: list[str] = [r[3] for r in rows]
        self.properties: list[str] = [r[4] for r in rows]
        del rows
        self.t_entities = time.perf_counter() - t0

        t0 = time.perf_counter()
        cursor.execute(
            "SELECT coalesce(array_agg(DISTINCT type ORDER BY type), '{}') FROM kg_relations"
        )
        self.relation_types: list[str] = cursor.fetchone()[0]
        buf = bytearray()
        with cursor.copy(_RELATIONS_COPY, (self.relation_types,)) as copy:
            for block in copy:
                buf += block
        body = np.frombuffer(buf, dtype=_ROW, offset=19, count=(len(buf) - 21) // _ROW.itemsize)
        assert (body["n"] == 8).all() and len(buf) == 21 + body.size * _ROW.itemsize
        cursor.execute("SELECT id, properties::text FROM kg_relations WHERE properties <> '{}'")
        self.relation_properties = {r[0].bytes: r[1] for r in cursor.fetchall()}
        self.t_relations = time.perf_counter() - t0

        t0 = time.perf_counter()
        n = len(self.ids)
        keys = np.frombuffer(b"".join(u.bytes for u in self.ids), dtype="S16")
        by_id = np.argsort(keys, kind="stable")
        sorted_keys = keys[by_id]
        src = by_id[np.searchsorted(sorted_keys, body["src"])]
        tgt = by_id[np.searchsorted(sorted_keys, body["tgt"])]
        self.rel_id = np.ascontiguousarray(body["id"])
        self.rel_type = body["type"].astype(np.int32) - 1
        self.rel_weight = body["weight"].astype(np.float64)
        self.rel_from = body["vf"].astype(np.int64)
        self.rel_to = body["vt"].astype(np.int64)
        self.rel_src = src.astype(np.int32)
        self.rel_tgt = tgt.astype(np.int32)
        del body, buf
        out = np.lexsort((tgt, src))
        self.out_rel = out.astype(np.int32)
        self.out_node = self.rel_tgt[out]
        self.out_ptr = np.searchsorted(self.rel_src[out], np.arange(n + 1)).astype(np.int64)
        inn = np.lexsort((src, tgt))
        self.in_rel = inn.astype(np.int32)
        self.in_node = self.rel_src[inn]
        self.in_ptr = np.searchsorted(self.rel_tgt[inn], np.arange(n + 1)).astype(np.int64)
        self.rank = {u: i for i, u in enumerate(self.ids)}
        self.t_build = time.perf_counter() - t0

    @staticmethod
    def _slices(ptr: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Positions of the nodes' slices of a CSR column, one array."""
        starts = ptr[nodes]
        lengths = ptr[nodes + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        return offsets + np.arange(total)

    def _allowed(self, rels: np.ndarray, types: np.ndarray | None, as_of: int | None) -> np.ndarray:
        keep = np.ones(rels.size, dtype=bool)
        if types is not None:
            keep &= np.isin(self.rel_type[rels], types)
        if as_of is not None:
            keep &= (self.rel_from[rels] <= as_of) & (self.rel_to[rels] > as_of)
        return keep

    def neighbourhood(
        self,
        root_id: uuid.UUID,
        *,
        depth: int,
        direction: str,
        types: list[str],
        as_of: datetime | None,
        node_limit: int,
        edge_limit: int,
    ) -> tuple[list[NodeRow], list[EdgeRow], int, bool]:
        root = self.rank.get(root_id)
        if root is None:
            return [], [], 0, False
        codes = (
            np.array([self.relation_types.index(t) for t in types if t in self.relation_types])
            if types
            else None
        )
        if codes is not None and codes.size == 0:
            codes = np.array([-2])
        when = None if as_of is None else _ticks(as_of)
        seen = np.zeros(len(self.ids), dtype=bool)
        seen[root] = True
        kept = [np.array([root])]
        frontier = kept[0]
        count = 1
        for _ in range(depth):
            if frontier.size == 0:
                break
            found = []
            for ptr, nodes, rels, follow in (
                (self.out_ptr, self.out_node, self.out_rel, direction in ("out", "both")),
                (self.in_ptr, self.in_node, self.in_rel, direction in ("in", "both")),
            ):
                if follow:
                    pos = self._slices(ptr, frontier)
                    pos = pos[self._allowed(rels[pos], codes, when)]
                    found.append(nodes[pos])
            level = np.concatenate(found)
            # sorted, then each once (np.unique hashes: ~2 ms for a hub's 9,161, 5x this)
            level = np.sort(level[~seen[level]])
            if level.size:
                level = level[np.concatenate(([True], level[1:] != level[:-1]))]
            room = node_limit - count
            if level.size > room:
                kept.append(level[:room])
                count = node_limit + 1
                break
            seen[level] = True
            kept.append(level)
            count += level.size
            frontier = level
        nodes: list[NodeRow] = []
        for d, level in enumerate(kept):
            for n in level.tolist():
                props = self.properties[n]
                nodes.append(
                    NodeRow(
                        self.ids[n], self.names[n], self.types[n], self.descriptions[n], d,
                        from_json(props) if props != "{}" else {},
                    )
                )  # fmt: skip
        members = np.concatenate(kept)
        mask = np.zeros(len(self.ids), dtype=bool)
        mask[members] = True
        pos = self._slices(self.out_ptr, members)
        pos = pos[mask[self.out_node[pos]]]
        rels = self.out_rel[pos]
        rels = rels[self._allowed(rels, codes, when)]
        truncated = rels.size > edge_limit
        # Each column read once for the kept relations (a numpy scalar per field costs ~1 us).
        sel = rels[:edge_limit]
        raw = self.rel_id[sel].tobytes()
        names, ids, type_names = self.names, self.ids, self.relation_types
        edges = []
        for i, (s, t, code, weight, vf, vt) in enumerate(
            zip(
                self.rel_src[sel].tolist(), self.rel_tgt[sel].tolist(),
                self.rel_type[sel].tolist(), self.rel_weight[sel].tolist(),
                self.rel_from[sel].tolist(), self.rel_to[sel].tolist(),
                strict=True,
            )
        ):  # fmt: skip
            key = raw[16 * i : 16 * i + 16]
            props = self.relation_properties.get(key)
            edges.append(
                EdgeRow(
                    _uuid(key), ids[s], ids[t], type_names[code], weight,
                    None if vf == _NEG_INF else _time(vf), None if vt == _POS_INF else _time(vt),
                    from_json(props) if props else {}, names[s], names[t],
                )
            )  # fmt: skip
        return nodes, edges, count, truncated


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", help="the folder graph_bench.py generated its data in")
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--roots", type=int, default=40)
    args = parser.parse_args()
    with benchmark_database(args.keep) as settings:
        owner = create_engine(settings.owner_url())
        with owner.connect() as conn:
            uid = conn.scalar(text("SELECT id FROM users WHERE email = 'graph@example.com'"))
        if uid is None:
            import graph_bench  # generates the data (the same every time)

            graph_bench.load(owner, 100_000, 500_000, graph_bench.HUB_EDGES)
            with owner.connect() as conn:
                uid = conn.scalar(text("SELECT id FROM users WHERE email = 'graph@example.com'"))
        with owner.connect() as conn:
            hub = conn.scalar(
                text(
                    "SELECT source_id FROM kg_relations GROUP BY source_id "
                    "ORDER BY count(*) DESC, source_id LIMIT 1"
                )
            )
            roots = list(
                conn.scalars(
                    text("SELECT id FROM kg_entities ORDER BY md5(id::text) LIMIT :n"),
                    {"n": args.roots},
                )
            )
            leaves = list(
                conn.scalars(
                    text(
                        "SELECT e.id FROM kg_entities e WHERE EXISTS (SELECT FROM kg_relations r "
                        "WHERE r.target_id = e.id) AND NOT EXISTS (SELECT FROM kg_relations r "
                        "WHERE r.source_id = e.id) ORDER BY e.name, e.id LIMIT 5"
                    )
                )
            )
        app = create_app_engine(settings)
        uow = UnitOfWorkFactory(app)
        principal = Principal(user_id=uid, email="graph@example.com", role="user")
        queries = KnowledgeGraphQueries(
            uow, UserEmbedders(EmbedderRegistry(LexicalEmbedder())), SystemClock()
        )

        rss = _rss_mb()
        t0 = time.perf_counter()
        # One snapshot (a real version reads the graph's version in it too), as the app role.
        with app.connect().execution_options(isolation_level="REPEATABLE READ") as c:
            c.execute(
                text(
                    "SELECT set_config('app.user_id', :u, true), set_config('app.user_role', 'user', true)"
                ),
                {"u": str(uid)},
            )
            driver: Any = c.connection.driver_connection
            graph = InMemoryGraph(driver.cursor())
            c.rollback()
        t_load = time.perf_counter() - t0
        gc.collect()
        print(
            f"loaded {len(graph.ids):,} entities and {graph.rel_src.size:,} relations as the app "
            f"role in {t_load:.2f} s (entities {graph.t_entities:.2f} s, relations "
            f"{graph.t_relations:.2f} s, arrays {graph.t_build:.2f} s); this process grew by "
            f"{_rss_mb() - rss:,.0f} MB"
        )

        def version_check() -> None:
            with uow.for_user_id(uid) as w:
                w.session.execute(text("SELECT id FROM users WHERE id = :u"), {"u": uid}).one()

        def cached(root: uuid.UUID, depth: int, cap: int, **kw: Any) -> Any:
            version_check()
            return graph.neighbourhood(
                root,
                depth=depth,
                direction=kw.get("direction", "both"),
                types=kw.get("types", []),
                as_of=kw.get("as_of"),
                node_limit=cap,
                edge_limit=cap * 5,
            )

        # The check: the same answer as the service, case by case.
        rng = random.Random(16)
        types = graph.relation_types
        cases = 0
        wrong: list[str] = []
        for root in [hub, *leaves, *roots]:
            for depth in (1, 2, 3):
                for cap in (50, 500, 2000):
                    direction = rng.choice(["both", "out", "in"])
                    kw: dict[str, Any] = {"direction": direction}
                    if rng.random() < 0.3:
                        kw["types"] = rng.sample(types, rng.randint(1, 3))
                    if rng.random() < 0.2:
                        kw["as_of"] = datetime(2026, 1, 1, tzinfo=UTC)
                    nodes, edges, count, edges_cut = cached(root, depth, cap, **kw)
                    svc = queries.neighbourhood(
                        principal,
                        root,
                        depth=depth,
                        node_limit=cap,
                        direction=kw["direction"],
                        relation_types=kw.get("types", []),
                        as_of=kw.get("as_of"),
                    )
                    cases += 1
                    ours_e = sorted(astuple(e) for e in edges)
                    theirs_e = sorted(
                        (e.id, e.source_id, e.target_id, e.type, e.weight, e.valid_from,
                         e.valid_to, e.properties, e.source_name, e.target_name)
                        for e in svc.edges
                    )  # fmt: skip
                    if (
                        [astuple(n) for n in nodes]
                        != [(n.id, n.name, n.type, n.description, n.depth, n.properties)
                            for n in svc.nodes]
                        or (count > cap) != svc.truncated
                        or edges_cut != svc.edges_truncated
                        or (not edges_cut and ours_e != theirs_e)
                        or (edges_cut and len(edges) != len(svc.edges))
                    ):  # fmt: skip
                        wrong.append(f"{root} depth {depth} cap {cap} {kw}")
        print(
            f"same answer as the service in {cases - len(wrong)} of {cases} neighbourhoods "
            f"({len([hub, *leaves, *roots])} roots incl. the hub and 5 leaves, depths 1-3, caps "
            "50/500/2,000, random direction, type filter in ~30 %, a date in ~20 %)"
        )
        for line in wrong[:5]:
            print("  DIFFERENT:", line)

        def p50(fn: Any) -> float:
            fn()
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1000)
            return statistics.median(times)

        def repository(root: uuid.UUID, depth: int, cap: int) -> Any:
            """The product's call, returning the same rows: the statement in its own unit of
            work (graph_bench.py's "through the repository")."""
            with uow.for_user_id(uid) as w:
                return KnowledgeGraphRepository(w.session).neighbourhood(
                    root, depth=depth, direction="both", types=[], as_of=None,
                    node_limit=cap, edge_limit=cap * 5,
                )  # fmt: skip

        gc.collect()
        gc.freeze()  # as the app does once warmed up
        t_check = p50(version_check)
        print(f"the version check's round trip alone (an indexed one-row read): {t_check:.2f} ms")
        for label, root, depth, cap, target in (
            ("hub depth 2, cap 500", hub, 2, 500, "<= 5 ms"),
            ("hub depth 2, cap 2,000", hub, 2, 2000, "<= 30 ms"),
            ("leaf depth 3, cap 500", leaves[0], 3, 500, ""),
        ):
            t_mem = p50(lambda r=root, d=depth, c=cap: cached(r, d, c))
            t_svc = p50(lambda r=root, d=depth, c=cap: repository(r, d, c))
            print(
                f"{label}: in memory {t_mem:.2f} ms vs the repository {t_svc:.2f} ms "
                f"({t_svc / t_mem:.1f}x faster){'   target ' + target if target else ''}"
            )
        mem, svc_t = [], []
        for root in roots[:20]:
            mem.append(p50(lambda r=root: cached(r, 3, 500)))
            svc_t.append(p50(lambda r=root: repository(r, 3, 500)))
        print(
            f"20 random roots, depth 3, cap 500: in memory median {statistics.median(mem):.2f} ms "
            f"(max {max(mem):.2f}) vs the repository median {statistics.median(svc_t):.2f} ms "
            f"(max {max(svc_t):.2f})"
        )


if __name__ == "__main__":
    main()
