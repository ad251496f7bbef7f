"""A large user's knowledge graph held in this process, for capped neighbourhoods and the
uncapped export.

Around a hub the neighbourhood statement spends its time on one index read per kept node (its
row, its relations to the others) and on their JSON (benchmarks/MEMORY_AND_GRAPH.md); held as
arrays the same answer takes a few vector operations: 3-8x faster through the service around a
hub at caps 500 and 2,000. It is only used while it is current: the first statement of every
transaction that writes a user's entities or relations raises their number in
``kg_graph_versions`` (migration 0030), the request reads that number first (one autocommit
statement), and a copy read at another number is not used: the statement answers as before,
and a fresh copy is loaded on a background thread.

* :class:`InMemoryGraph`: the arrays (a node's number is its rank by name, then id, so a level's
  "first names" are its smallest numbers) and the walk, which keeps exactly what
  ``jarvis_kg_walk`` keeps (nearest by depth, then name, then id; the first level over the cap
  keeps its first names) and the relations among the kept nodes (every relation between two of
  them that passes the type and date filters, at most ``edge_limit``); without a cap, the
  export's JSON lines, the text PostgreSQL writes for them (2-3x faster for a hub's 92 MB).
* :class:`GraphMemory`: the copies (per user, least recently used dropped beyond a budget of
  relations), which graphs are worth one (``min_relations``: small graphs are a few
  milliseconds in SQL), and the loads (on a background thread, one per user at a time, at most
  one every 30 s).

Only the acting user's own graph is read and held (row-level security, and the user named in
every read); a root outside it is the statement's to answer, as before. Tests:
``tests/integration/test_graph_in_memory.py`` holds both paths to the same answer.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring

import numpy as np
from pydantic_core import from_json

from jarvis.db.repositories.knowledge_graph import EXPORT_CHUNK_BYTES, GraphArrays, uuid_of_int
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.identity import Principal
from jarvis.services.knowledge_graph.views import Direction, GraphNode, RelationView

log = logging.getLogger(__name__)

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL counts timestamps from here
_OPEN_START, _OPEN_END = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_MICROSECOND = timedelta(microseconds=1)
#: At most one load per user in this many seconds (a user writing all the time is answered by
#: the statement, not reloaded on every request).
RELOAD_SECONDS = 30.0


#: The ticks Python's datetime can hold (years 1 to 9999); PostgreSQL's reach further.
_FIRST_TICK = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_LAST_TICK = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# A UUID's text: its hex digits in groups of 8-4-4-4-12, and where each group starts.
_GROUPS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
_AT = (0, 9, 14, 19, 24)


def _time(ticks: int) -> datetime | None:
    return None if ticks in (_OPEN_START, _OPEN_END) else _EPOCH + ticks * _MICROSECOND


def _json_time(ticks: int) -> str:
    """A timestamp as PostgreSQL's ``to_json`` writes it in UTC (fraction without trailing
    zeros), or ``null`` for an open end."""
    moment = _time(ticks)
    if moment is None:
        return "null"
    text = moment.isoformat()
    if moment.microsecond:
        text = text[:-6].rstrip("0") + text[-6:]
    return f'"{text}"'


def _json_float(x: float) -> str:
    """A float8 as PostgreSQL writes it (``float8out``: the shortest text that reads back the
    same, no ``.0``, an exponent from 1e15 and below 1e-4; NaN and infinities as strings)."""
    if x != x:
        return '"NaN"'
    if x in (float("inf"), float("-inf")):
        return '"Infinity"' if x > 0 else '"-Infinity"'
    text = repr(x)
    if "e" in text:
        return text
    if text.endswith(".0"):
        text = text[:-2]
    if abs(x) >= 1e15:  # Python writes up to 1e16 without an exponent
        sign, digits = ("-", text[1:]) if text[0] == "-" else ("", text)
        rest = digits[1:].rstrip("0")
        return f"{sign}{digits[0]}{'.' + rest if rest else ''}e+{len(digits) - 1:02d}"
    return text


def _uuid_texts(raw: bytes) -> str:
    """UUIDs (16 bytes each) as their 36-character texts, one after another."""
    octets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16)
    hexed = np.empty((len(octets), 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[octets >> 4]
    hexed[:, 1::2] = _HEX[octets & 15]
    texts = np.full((len(octets), 36), ord("-"), dtype=np.uint8)
    for (start, end), at in zip(_GROUPS, _AT, strict=True):
        texts[:, at : at + end - start] = hexed[:, start:end]
    return texts.tobytes().decode("ascii")


def _slices(ptr: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The positions of the nodes' slices of a CSR column, as one array."""
    starts = ptr[nodes]
    lengths = ptr[nodes + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)


@dataclass(frozen=True, slots=True)
class NeighbourhoodParts:
    """A capped neighbourhood's nodes (nearest first) and relations, ``seen`` (``cap + 1``
    when the cap cut a level) and whether relations beyond ``edge_limit`` were left out."""

    nodes: list[GraphNode]
    edges: list[RelationView]
    seen: int
    edges_truncated: bool


class InMemoryGraph:
    """One user's graph as arrays, and the capped neighbourhood computed on them."""

    def __init__(self, arrays: GraphArrays) -> None:
        self._a = arrays
        n = len(arrays.ids)
        self.relations = int(arrays.relation_sources.size)
        self._relation_uuids: list[uuid.UUID | None] = [None] * self.relations
        self._rank = {entity_id: i for i, entity_id in enumerate(arrays.ids)}
        sources, targets = arrays.relation_sources, arrays.relation_targets
        # Both directions' adjacency (CSR), each node's neighbours in rank order.
        out = np.lexsort((targets, sources))
        self._out_rel = out.astype(np.int32)
        self._out_node = targets[out]
        self._out_ptr = np.searchsorted(sources[out], np.arange(n + 1))
        into = np.lexsort((sources, targets))
        self._in_rel = into.astype(np.int32)
        self._in_node = sources[into]
        self._in_ptr = np.searchsorted(targets[into], np.arange(n + 1))

    def _passes(
        self, rels: np.ndarray, codes: np.ndarray | None, as_of: int | None
    ) -> np.ndarray | None:
        """Which of these relations the filters let through (None: all of them)."""
        if codes is None and as_of is None:
            return None
        keep = np.ones(rels.size, dtype=bool)
        if codes is not None:
            keep &= np.isin(self._a.relation_type_codes[rels], codes)
        if as_of is not None:
            keep &= (self._a.relation_valid_from[rels] <= as_of) & (
                self._a.relation_valid_to[rels] > as_of
            )
        return keep

    def _filters(
        self, types: Sequence[str], as_of: datetime | None
    ) -> tuple[np.ndarray | None, int | None]:
        """The relation-type codes asked for (None: any) and the date as ticks (None: any)."""
        codes: np.ndarray | None = None
        if types:
            wanted = set(types)
            codes = np.array(
                [i for i, t in enumerate(self._a.relation_types) if t in wanted] or [-1],
                dtype=np.int32,
            )
        if as_of is not None and as_of.tzinfo is None:  # as the database reads it (UTC)
            as_of = as_of.replace(tzinfo=UTC)
        when = None if as_of is None else (as_of - _EPOCH) // _MICROSECOND
        return codes, when

    def _walk(
        self,
        root: int,
        depth: int,
        direction: Direction,
        codes: np.ndarray | None,
        when: int | None,
        node_limit: int,
    ) -> tuple[list[np.ndarray], int]:
        """The nodes level by level (each sorted: by name, then id) and how many were seen
        (``node_limit + 1`` when the cap cut a level)."""
        seen = np.zeros(len(self._a.ids), dtype=bool)
        seen[root] = True
        levels = [np.array([root])]
        frontier = levels[0]
        count = 1
        sides = [
            (ptr, nodes, rels)
            for ptr, nodes, rels, follow in (
                (self._out_ptr, self._out_node, self._out_rel, direction in ("out", "both")),
                (self._in_ptr, self._in_node, self._in_rel, direction in ("in", "both")),
            )
            if follow
        ]
        for _ in range(depth):
            if frontier.size == 0:
                break
            found = []
            for ptr, nodes, rels in sides:
                pos = _slices(ptr, frontier)
                keep = self._passes(rels[pos], codes, when)
                found.append(nodes[pos] if keep is None else nodes[pos[keep]])
            level = np.concatenate(found)
            # sorted, then each node once (np.unique hashes: 5x this for a hub's 9,000)
            level = np.sort(level[~seen[level]])
            if level.size:
                level = level[np.concatenate(([True], level[1:] != level[:-1]))]
            room = node_limit - count
            if level.size > room:  # the first level over the cap keeps its first names
                levels.append(level[:room])
                count = node_limit + 1
                break
            seen[level] = True
            levels.append(level)
            count += int(level.size)
            frontier = level
        return levels, count

    def _among(self, members: np.ndarray, codes: np.ndarray | None, when: int | None) -> np.ndarray:
        """Every relation between two of the members that passes the filters (by source, then
        target)."""
        kept = np.zeros(len(self._a.ids), dtype=bool)
        kept[members] = True
        pos = _slices(self._out_ptr, members)
        rels: np.ndarray = self._out_rel[pos[kept[self._out_node[pos]]]]
        keep = self._passes(rels, codes, when)
        return rels if keep is None else rels[keep]

    def json_lines(
        self,
        root_id: uuid.UUID,
        *,
        depth: int,
        direction: Direction,
        types: Sequence[str],
        as_of: datetime | None,
        chunk_bytes: int = EXPORT_CHUNK_BYTES,
    ) -> Iterator[str] | None:
        """The uncapped neighbourhood as the export's JSON lines (what
        ``KnowledgeGraphRepository.stream_neighbourhood_json`` writes, times in UTC, the
        relations in another order), in chunks of whole lines of about ``chunk_bytes``; None
        when the root is not in this graph, or a time in it is beyond what Python's dates hold
        (the statement answers those). Its working set grows with the neighbourhood (its
        members' ids and names as text: ~50 MB at peak for the bench hub's 92 MB; the
        statement's stays one chunk)."""
        root = self._rank.get(root_id)
        if root is None:
            return None
        codes, when = self._filters(types, as_of)
        levels, _ = self._walk(root, depth, direction, codes, when, len(self._a.ids))
        members = np.concatenate(levels)
        rels = self._among(members, codes, when)
        for column, open_end in (
            (self._a.relation_valid_from[rels], _OPEN_START),
            (self._a.relation_valid_to[rels], _OPEN_END),
        ):
            timed = column[column != open_end]
            if timed.size and (timed.min() < _FIRST_TICK or timed.max() > _LAST_TICK):
                return None
        return self._lines(levels, members, rels, chunk_bytes)

    def _lines(
        self, levels: list[np.ndarray], members: np.ndarray, rels: np.ndarray, chunk_bytes: int
    ) -> Iterator[str]:
        a = self._a
        # Each member's id and name as JSON text, made once: a hub's relations name them ~4x.
        order = members.tolist()
        id_texts = _uuid_texts(b"".join(a.ids[n].bytes for n in order))
        ids = [id_texts[i : i + 36] for i in range(0, len(id_texts), 36)]
        names = [encode_basestring(a.names[n]) for n in order]
        depths = np.repeat(np.arange(len(levels)), [level.size for level in levels]).tolist()
        named = list(zip(order, ids, names, strict=True))
        sources = {n: f'"source_id": "{i}", "source": {name}' for n, i, name in named}
        targets = {n: f'"target_id": "{i}", "target": {name}' for n, i, name in named}
        types, descriptions, properties = a.types, a.descriptions, a.properties
        batch = max(1, chunk_bytes // 150)  # a node's line is ~150 characters
        for start in range(0, len(order), batch):
            end = start + batch
            yield "".join(
                [
                    f'{{"node": {{"id": "{i}", "name": {name}, '
                    f'"type": {encode_basestring(types[n])}, '
                    f'"description": {encode_basestring(descriptions[n])}, '
                    f'"depth": {depth}, "properties": {properties[n]}}}}}\n'
                    for n, i, name, depth in zip(
                        order[start:end],
                        ids[start:end],
                        names[start:end],
                        depths[start:end],
                        strict=True,
                    )
                ]
            )
        # The relations, a batch of lines at a time (a chunk of about chunk_bytes each), their
        # ids as text a batch at a time (all at once held ~30 MB more for the hub's); each
        # distinct weight written once (by its bits, so 0.0 and -0.0 stay apart).
        type_texts = [encode_basestring(t) for t in a.relation_types]
        distinct, which = np.unique(a.relation_weights[rels].view(np.int64), return_inverse=True)
        weight_texts = [_json_float(w) for w in distinct.view(np.float64).tolist()]
        with_properties = a.relation_properties
        batch = max(1, chunk_bytes // 330)  # a relation's line is ~330 characters
        for start in range(0, rels.size, batch):
            part = rels[start : start + batch]
            raw = a.relation_ids[part].tobytes()
            relation_ids = _uuid_texts(raw)
            yield "".join(
                [
                    f'{{"relation": {{"id": "{relation_ids[36 * k : 36 * k + 36]}", '
                    f'{sources[s]}, "type": {type_texts[code]}, {targets[t]}, '
                    f'"weight": {weight_texts[w]}, '
                    f'"valid_from": {"null" if valid_from == _OPEN_START else _json_time(valid_from)}, '
                    f'"valid_to": {"null" if valid_to == _OPEN_END else _json_time(valid_to)}, '
                    f'"properties": {with_properties.get(raw[16 * k : 16 * k + 16], "{}") if with_properties else "{}"}}}}}\n'
                    for k, (s, t, code, w, valid_from, valid_to) in enumerate(
                        zip(
                            a.relation_sources[part].tolist(),
                            a.relation_targets[part].tolist(),
                            a.relation_type_codes[part].tolist(),
                            which[start : start + batch].tolist(),
                            a.relation_valid_from[part].tolist(),
                            a.relation_valid_to[part].tolist(),
                            strict=True,
                        )
                    )
                ]
            )

    def neighbourhood(
        self,
        root_id: uuid.UUID,
        *,
        depth: int,
        direction: Direction,
        types: Sequence[str],
        as_of: datetime | None,
        node_limit: int,
        edge_limit: int,
    ) -> NeighbourhoodParts | None:
        """What ``KnowledgeGraphRepository.neighbourhood`` finds (the relations in another
        order), as the service's views, or None when the root is not in this graph."""
        root = self._rank.get(root_id)
        if root is None:
            return None
        a = self._a
        codes, when = self._filters(types, as_of)
        levels, count = self._walk(root, depth, direction, codes, when, node_limit)
        ids, names = a.ids, a.names
        nodes_out: list[GraphNode] = []
        for d, level in enumerate(levels):
            for n in level.tolist():
                properties = a.properties[n]
                nodes_out.append(
                    GraphNode(
                        ids[n],
                        names[n],
                        a.types[n],
                        a.descriptions[n],
                        d,
                        from_json(properties) if properties != "{}" else {},
                    )
                )
        rels = self._among(np.concatenate(levels), codes, when)
        chosen = rels[:edge_limit]
        # Each column read once for the chosen relations (a numpy scalar per field costs ~1 us);
        # a relation's id object is made once and kept (ids are immutable; most are never asked).
        raw = a.relation_ids[chosen].tobytes()
        uuids, type_names, with_properties = (
            self._relation_uuids,
            a.relation_types,
            a.relation_properties,
        )
        edges = []
        for i, (k, s, t, code, weight, valid_from, valid_to) in enumerate(
            zip(
                chosen.tolist(),
                a.relation_sources[chosen].tolist(),
                a.relation_targets[chosen].tolist(),
                a.relation_type_codes[chosen].tolist(),
                a.relation_weights[chosen].tolist(),
                a.relation_valid_from[chosen].tolist(),
                a.relation_valid_to[chosen].tolist(),
                strict=True,
            )
        ):
            relation_id = uuids[k]
            if relation_id is None:
                relation_id = uuids[k] = uuid_of_int(int.from_bytes(raw[16 * i : 16 * i + 16]))
            properties = with_properties.get(raw[16 * i : 16 * i + 16]) if with_properties else None
            edges.append(
                RelationView(
                    relation_id,
                    ids[s],
                    ids[t],
                    type_names[code],
                    weight,
                    None if valid_from == _OPEN_START else _time(valid_from),
                    None if valid_to == _OPEN_END else _time(valid_to),
                    from_json(properties) if properties else {},
                    names[s],
                    names[t],
                )
            )
        return NeighbourhoodParts(
            nodes=nodes_out, edges=edges, seen=count, edges_truncated=bool(rels.size > edge_limit)
        )


class GraphMemory:
    """The graphs this process holds, by user, each with the version it was read at.

    ``max_relations``: the budget across users (0: never hold one); ``min_relations``: the
    smallest graph worth holding. ``background``: load on a thread (the app) or in the
    request's own call (tests; always when every unit of work shares one connection)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        max_relations: int,
        min_relations: int,
        background: bool = True,
        reload_seconds: float = RELOAD_SECONDS,
    ) -> None:
        self._uow = uow
        self.max_relations = max_relations
        self.min_relations = min_relations
        # a test's one shared connection must not be used from another thread
        self._background = background and not uow.shares_one_connection
        self._reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._graphs: OrderedDict[uuid.UUID, tuple[int, InMemoryGraph]] = OrderedDict()
        self._loading: set[uuid.UUID] = set()
        self._tried: dict[uuid.UUID, tuple[int, float]] = {}  # user: (version, when)
        self._unfit: dict[uuid.UUID, float] = {}  # user: when found too small or too large

    @property
    def enabled(self) -> bool:
        return self.max_relations > 0

    def worth_checking(self, user_id: uuid.UUID) -> bool:
        """Whether a request should read the user's version: not when their graph was found
        too small (or too large) to hold in the last ``reload_seconds`` (most users: they pay
        nothing for this)."""
        if not self.enabled:
            return False
        with self._lock:
            if user_id in self._graphs:
                return True
            unfit = self._unfit.get(user_id)
        return unfit is None or time.monotonic() - unfit >= self._reload_seconds

    def current(self, user_id: uuid.UUID, version: int) -> InMemoryGraph | None:
        """The user's graph if it was read at this version."""
        with self._lock:
            held = self._graphs.get(user_id)
            if held is None or held[0] != version:
                return None
            self._graphs.move_to_end(user_id)
            return held[1]

    def missed(self, principal: Principal, version: int) -> None:
        """The request was answered by the statement: load the graph for the next ones, unless
        it was tried at this version already, or in the last ``reload_seconds``, or is loading."""
        user_id = principal.user_id
        now = time.monotonic()
        with self._lock:
            if not self.enabled or user_id in self._loading:
                return
            tried = self._tried.get(user_id)
            if tried is not None and (tried[0] == version or now - tried[1] < self._reload_seconds):
                return
            self._tried[user_id] = (version, now)
            self._loading.add(user_id)
        if self._background:
            threading.Thread(
                target=self._load_quietly, args=(principal,), name="jarvis-graph-load", daemon=True
            ).start()
        else:
            self._load_quietly(principal)

    def load(self, principal: Principal) -> InMemoryGraph | None:
        """Read the user's graph now and hold it (None: too small or too large to hold, or
        written to while it was read)."""
        user_id = principal.user_id
        with self._uow(principal) as uow:
            before = uow.graph.graph_version(user_id)
            relations = uow.graph.relation_count(user_id)
            if not self.min_relations <= relations <= self.max_relations:
                with self._lock:
                    self._graphs.pop(user_id, None)
                    self._unfit[user_id] = time.monotonic()
                return None
            arrays = uow.graph.graph_arrays(user_id)
            # Every write raises the number in its own transaction: the same number after
            # the reads means none committed between them (each read saw that one state).
            if uow.graph.graph_version(user_id) != before:
                return None
        graph = InMemoryGraph(arrays)
        with self._lock:
            self._unfit.pop(user_id, None)
            self._graphs[user_id] = (before, graph)
            self._graphs.move_to_end(user_id)
            total = sum(g.relations for _, g in self._graphs.values())
            while total > self.max_relations and len(self._graphs) > 1:
                _, (_, dropped) = self._graphs.popitem(last=False)
                total -= dropped.relations
        return graph

    def _load_quietly(self, principal: Principal) -> None:
        started = time.perf_counter()
        try:
            graph = self.load(principal)
        except Exception as exc:  # the statement keeps answering; say why, never the data
            log.warning(
                "could not load a knowledge graph into memory", extra={"error": type(exc).__name__}
            )
        else:
            if graph is not None:
                log.info(
                    "loaded a knowledge graph into memory",
                    extra={
                        "relations": graph.relations,
                        "seconds": round(time.perf_counter() - started, 2),
                    },
                )
        finally:
            with self._lock:
                self._loading.discard(principal.user_id)
