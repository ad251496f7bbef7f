"""The explorer's picture: neighbourhoods -> one explored graph -> ECharts ``graph`` options.

Pure data (no Streamlit), so it is unit-tested. The explorer works like Neo4j Bloom:

* :func:`merge_neighbourhoods` joins the centred entity's neighbourhood and the neighbourhood of
  every node the user clicked (in click order) into one :class:`ExploredGraph`; nodes already
  shown keep their place, new ones are laid out around the node that brought them in;
* :func:`with_path` adds a found path's entities and relations to the picture, and
  :func:`echarts_options` draws the path emphasised and everything else dimmed;
* :func:`type_colour` gives each entity type one colour, the same in every view and process;
* the ``*_rows`` helpers turn views into table rows with no literal ``None`` in them.

Node ids are the entity ids; :data:`CLICK_HANDLER` returns ``params.data.id`` so the page knows
which entity was clicked.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from jarvis.services.knowledge_graph import (
    EntityDetails,
    GraphNode,
    Neighbourhood,
    PathResult,
    RelationView,
)

#: The click handler given to ``st_echarts(events=...)``: a node click returns its entity id.
CLICK_HANDLER = "function(params){ if (params.dataType === 'node') { return params.data.id; } }"

#: Client-side only (returns nothing, so no rerun): labels of the farthest ring (depth 3) show
#: once the user zooms in, and hide again when zoomed out.
ZOOM_LABEL_ZOOM = 1.6
ZOOM_HANDLER = (
    "function(params){ if (params.zoom == null) { return; }"
    " var s = chart.getOption().series[0];"
    f" var show = (s.zoom || 1) >= {ZOOM_LABEL_ZOOM};"
    " if (!s.label || s.label.show !== show) {"
    " chart.setOption({series: [{id: 'kg', label: {show: show}}]}); } }"
)

#: Twelve colours that stay apart on a white and a dark background (Tableau 10 plus two).
PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#1f9e89",
    "#8f6bd6",
)
#: What the path finder draws its path with, and how faint everything else becomes.
PATH_COLOUR = "#d62728"
DIM_OPACITY = 0.15
#: Shown instead of a missing value in tables.
BLANK = "—"

RING = 120.0
#: Labels: nodes up to this depth are labelled (overlaps hidden); deeper ones show on zoom.
LABEL_DEPTH = 2


def type_colour(type_name: str) -> str:
    """The colour of an entity type: a stable hash of its name into :data:`PALETTE`.

    Not Python's ``hash`` (salted per process): the same type has the same colour in every
    view, after every reload and on every server.
    """
    digest = hashlib.sha256(type_name.strip().casefold().encode()).digest()
    return PALETTE[int.from_bytes(digest[:4], "big") % len(PALETTE)]


def chart_event_value(result: Any) -> str | None:
    """The value our click handler returned, from ``st_echarts``' result (any version)."""
    if result is None:
        return None
    value = None
    if isinstance(result, str):
        value = result
    elif isinstance(result, dict) or hasattr(result, "get"):
        try:
            value = result.get("chart_event")
        except Exception:  # noqa: BLE001 - an exotic result type: no click
            value = None
    if value is None:
        value = getattr(result, "chart_event", None)
    if isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            return None
        return value
    return None


def parse_ids(raw: str | Iterable[str] | None) -> list[uuid.UUID]:
    """Entity ids from a URL parameter (``a,b,c``) or a list; anything else is skipped."""
    if raw is None:
        return []
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    ids: list[uuid.UUID] = []
    for part in parts:
        try:
            value = uuid.UUID(part.strip())
        except ValueError:
            continue
        if value not in ids:
            ids.append(value)
    return ids


# -- the explored graph ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExploredGraph:
    """What the explorer shows: nodes (depth = hops from the centre, as discovered), the
    relations among them, where each node is drawn, and which nodes were expanded."""

    root_id: uuid.UUID
    nodes: list[GraphNode]
    edges: list[RelationView]
    positions: dict[uuid.UUID, tuple[float, float]]
    expanded: tuple[uuid.UUID, ...] = ()
    truncated: bool = False
    path_node_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    path_edge_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

    def node(self, node_id: uuid.UUID) -> GraphNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    @property
    def types(self) -> list[str]:
        """The entity types shown, sorted (the legend)."""
        return sorted({n.type for n in self.nodes})


def radial_positions(hood: Neighbourhood) -> dict[uuid.UUID, tuple[float, float]]:
    """Root in the middle, depth-d entities on ring d (sorted by name, starting at 3 o'clock).

    Computed here rather than by a force simulation in the browser: a capped hub of 2,000
    nodes lays out instantly, and the picture is the same on every run.
    """
    rings: dict[int, list[GraphNode]] = defaultdict(list)
    for n in hood.nodes:
        rings[n.depth].append(n)
    pos: dict[uuid.UUID, tuple[float, float]] = {}
    for depth, members in rings.items():
        members.sort(key=_name_order)
        if depth == 0:
            for n in members:
                pos[n.id] = (0.0, 0.0)
            continue
        offset = 0.0 if depth == 1 else math.pi / (len(members) + 1)
        for i, n in enumerate(members):
            angle = offset + 2 * math.pi * i / len(members)
            pos[n.id] = _polar(depth * RING, angle)
    return pos


def _name_order(n: GraphNode) -> tuple[str, str]:
    return (n.name.lower(), str(n.id))


def _polar(
    radius: float, angle: float, origin: tuple[float, float] = (0.0, 0.0)
) -> tuple[float, float]:
    return (
        round(origin[0] + radius * math.cos(angle), 2),
        round(origin[1] + radius * math.sin(angle), 2),
    )


def _place_around(parent: tuple[float, float], count: int) -> list[tuple[float, float]]:
    """``count`` spots on an arc around ``parent``, facing away from the centre (the whole
    circle around the centre itself); the arc widens and moves out as ``count`` grows so
    neighbouring spots stay ~28 units apart."""
    if count == 0:
        return []
    if math.hypot(*parent) < 1e-6:  # around the centre: the whole circle
        step = 2 * math.pi / count
        return [_polar(max(RING, 28.0 * count / (2 * math.pi)), i * step) for i in range(count)]
    outward = math.atan2(parent[1], parent[0])
    spread = min(1.5 * math.pi, max(math.pi / 2, count * 0.25))
    radius = max(RING * 0.9, 28.0 * count / spread)
    step = spread / (count - 1) if count > 1 else 0.0
    start = outward - spread / 2 if count > 1 else outward
    return [_polar(radius, start + i * step, parent) for i in range(count)]


def merge_neighbourhoods(
    root: Neighbourhood, expansions: Sequence[Neighbourhood] = ()
) -> ExploredGraph:
    """The centred entity's neighbourhood plus each expansion, in the order they were made.

    A node or relation is shown once however many neighbourhoods hold it; a node keeps the
    depth and the place it had when it first appeared, so expanding only ever adds to the
    picture. New nodes of an expansion are placed around the node that was expanded, their
    depth counted from it. An expansion whose node is no longer shown (a filter changed) is
    skipped and left out of ``expanded``.
    """
    nodes: dict[uuid.UUID, GraphNode] = {n.id: n for n in root.nodes}
    edges: dict[uuid.UUID, RelationView] = {e.id: e for e in root.edges}
    positions = radial_positions(root)
    expanded: list[uuid.UUID] = []
    truncated = root.truncated
    for hood in expansions:
        parent = nodes.get(hood.root_id)
        if parent is None or hood.root_id in expanded:
            continue
        expanded.append(hood.root_id)
        truncated = truncated or hood.truncated
        new = sorted(
            (n for n in hood.nodes if n.id not in nodes), key=lambda n: (n.depth, *_name_order(n))
        )
        spots = _place_around(positions[parent.id], len(new))
        for n, spot in zip(new, spots, strict=True):
            nodes[n.id] = GraphNode(
                n.id, n.name, n.type, n.description, parent.depth + n.depth, n.properties
            )
            positions[n.id] = spot
        for e in hood.edges:
            if e.id not in edges and e.source_id in nodes and e.target_id in nodes:
                edges[e.id] = e
    return ExploredGraph(
        root.root_id,
        list(nodes.values()),
        list(edges.values()),
        positions,
        tuple(expanded),
        truncated,
    )


def with_path(graph: ExploredGraph, path: PathResult | None) -> ExploredGraph:
    """The picture with a found path marked. Path entities not shown yet are added as a chain
    from the nearest path entity that is shown (each placed next to its neighbour on the
    path); a path wholly outside the picture is drawn beside it."""
    if path is None or not path.found or not path.nodes:
        return graph
    nodes = {n.id: n for n in graph.nodes}
    positions = dict(graph.positions)
    edges = {e.id: e for e in graph.edges}
    chain = list(path.nodes)
    anchor = next((i for i, e in enumerate(chain) if e.id in nodes), None)
    if anchor is None:
        anchor = 0
        first = chain[0]
        right = max((x for x, _ in positions.values()), default=0.0)
        nodes[first.id] = GraphNode(
            first.id, first.name, first.type, first.description, 1, first.properties
        )
        positions[first.id] = (round(right + RING, 2), 0.0)
    order = [(i, i - 1) for i in range(anchor + 1, len(chain))]
    order += [(i, i + 1) for i in range(anchor - 1, -1, -1)]
    for i, neighbour in order:
        entity = chain[i]
        if entity.id in nodes:
            continue
        near = nodes[chain[neighbour].id]
        nodes[entity.id] = GraphNode(
            entity.id,
            entity.name,
            entity.type,
            entity.description,
            near.depth + 1,
            entity.properties,
        )
        positions[entity.id] = _place_around(positions[near.id], 1)[0]
    for e in path.edges:
        edges.setdefault(e.id, e)
    return ExploredGraph(
        graph.root_id,
        list(nodes.values()),
        list(edges.values()),
        positions,
        graph.expanded,
        graph.truncated,
        frozenset(e.id for e in chain),
        frozenset(e.id for e in path.edges),
    )


# -- ECharts -----------------------------------------------------------------------------------


def _symbol_size(depth: int) -> int:
    return 34 if depth == 0 else max(10, 24 - 5 * depth)


def _node_label(n: GraphNode, *, on_path: bool, dimmed: bool) -> dict[str, Any] | None:
    """The node's own label setting; ``None`` leaves it to the series (shown on zoom)."""
    if dimmed:
        return {"show": False}
    if on_path:
        return {"show": True, "fontWeight": "bold", "fontSize": 13}
    if n.depth <= LABEL_DEPTH:
        return {"show": True, "fontSize": 13 if n.depth == 0 else 12}
    return None


def _node_style(n: GraphNode, graph: ExploredGraph, selected: uuid.UUID | None) -> dict[str, Any]:
    style: dict[str, Any] = {"color": type_colour(n.type)}
    if graph.path_node_ids:
        if n.id in graph.path_node_ids:
            style.update(borderColor=PATH_COLOUR, borderWidth=3, opacity=1)
        else:
            style["opacity"] = DIM_OPACITY
    elif n.id == selected:
        style.update(borderColor="#222", borderWidth=3)
    elif n.id in graph.expanded or n.id == graph.root_id:
        style.update(borderColor="#555", borderWidth=1.5)
    return style


def _edge(e: RelationView, graph: ExploredGraph, edge_labels: bool) -> dict[str, Any]:
    link: dict[str, Any] = {
        "source": str(e.source_id),
        "target": str(e.target_id),
        "value": e.type,
        "label": {"show": edge_labels, "formatter": e.type, "fontSize": 10},
    }
    if graph.path_edge_ids:
        if e.id in graph.path_edge_ids:
            link["lineStyle"] = {"color": PATH_COLOUR, "width": 4, "opacity": 1}
            link["label"] = {
                "show": True,
                "formatter": e.type,
                "fontSize": 11,
                "fontWeight": "bold",
            }
        else:
            link["lineStyle"] = {"opacity": DIM_OPACITY / 2}
            link["label"] = {"show": False}
    return link


def echarts_options(
    graph: ExploredGraph | Neighbourhood, selected: uuid.UUID | None = None
) -> dict[str, Any]:
    """A graph centred on the root: colour by entity type (:func:`type_colour`, with a
    legend), node size by closeness to the root, labels up to depth 2 (overlaps hidden), the
    farther ones on zoom or hover; a marked path drawn red over a dimmed rest."""
    if isinstance(graph, Neighbourhood):
        graph = merge_neighbourhoods(graph)
    types = graph.types
    index = {t: i for i, t in enumerate(types)}
    dimming = bool(graph.path_node_ids)
    nodes = []
    for n in graph.nodes:
        on_path = n.id in graph.path_node_ids
        node: dict[str, Any] = {
            "id": str(n.id),
            "name": n.name,
            "x": graph.positions[n.id][0],
            "y": graph.positions[n.id][1],
            "category": index[n.type],
            "symbolSize": _symbol_size(n.depth) + (4 if on_path else 0),
            "value": n.depth,
            "itemStyle": _node_style(n, graph, selected),
            "tooltip": {"formatter": f"{n.name} ({n.type}) · depth {n.depth}"},
        }
        label = _node_label(n, on_path=on_path, dimmed=dimming and not on_path)
        if label is not None:
            node["label"] = label
        nodes.append(node)
    edge_labels = len(graph.edges) <= 40
    return {
        # richText: tooltips are drawn on the canvas, so entity names are never parsed as HTML.
        "tooltip": {"show": True, "renderMode": "richText"},
        "legend": [{"data": types, "type": "scroll", "bottom": 0}],
        "animationDurationUpdate": 300,
        "series": [
            {
                "id": "kg",
                "type": "graph",
                "layout": "none",
                "roam": True,
                "draggable": False,
                "categories": [{"name": t, "itemStyle": {"color": type_colour(t)}} for t in types],
                "data": nodes,
                "links": [_edge(e, graph, edge_labels) for e in graph.edges],
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 6,
                # Series default for nodes without their own label (depth 3): off until zoomed.
                "label": {"show": False, "position": "right", "fontSize": 11},
                "labelLayout": {"hideOverlap": True},
                "emphasis": {"focus": "adjacency", "label": {"show": True}},
                "lineStyle": {"opacity": 0.6, "curveness": 0.1},
            }
        ],
    }


# -- text and tables ---------------------------------------------------------------------------


def cell(value: object) -> str:
    """A table cell as text: missing values as a dash (never ``None``), dates as dates,
    numbers without needless decimals."""
    if value is None or value == "":
        return BLANK
    if isinstance(value, datetime):
        return (
            value.strftime("%Y-%m-%d")
            if value.time() == datetime.min.time()
            else value.strftime("%Y-%m-%d %H:%M")
        )
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def relation_rows(details: EntityDetails) -> list[dict[str, str]]:
    """The details panel's table: one row per relation of the entity, both directions."""
    e = details.entity
    return [
        {
            "direction": "→" if r.source_id == e.id else "←",
            "relation": r.type,
            "entity": cell(r.target_name if r.source_id == e.id else r.source_name),
            "weight": cell(r.weight),
            "valid from": cell(r.valid_from),
            "valid to": cell(r.valid_to),
        }
        for r in details.relations
    ]


def node_rows(graph: ExploredGraph) -> list[dict[str, str | int]]:
    return [
        {"name": n.name, "type": n.type, "depth": n.depth, "description": cell(n.description)}
        for n in sorted(graph.nodes, key=lambda n: (n.depth, *_name_order(n)))
    ]


def edge_rows(edges: Iterable[RelationView]) -> list[dict[str, str]]:
    return [
        {
            "source": cell(r.source_name),
            "relation": r.type,
            "target": cell(r.target_name),
            "weight": cell(r.weight),
            "valid from": cell(r.valid_from),
            "valid to": cell(r.valid_to),
        }
        for r in edges
    ]


def path_text(path: PathResult) -> str:
    """``Ada —worked_with→ Charles —designed→ Engine`` (arrows follow each relation)."""
    if not path.nodes:
        return ""
    steps = [path.nodes[0].name]
    for edge, node in zip(path.edges, path.nodes[1:], strict=True):
        steps.append(f"—{edge.type}→" if edge.target_id == node.id else f"←{edge.type}—")
        steps.append(node.name)
    return " ".join(steps)
