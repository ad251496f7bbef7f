"""The explorer's graph picture: a neighbourhood -> ECharts ``graph`` series options.

Pure data (no Streamlit), so it is unit-tested. Node ids are the entity ids; a click handler
returning ``params.data.id`` tells the page which entity to focus.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from typing import Any

from jarvis.services.knowledge_graph import Neighbourhood

#: The click handler given to ``st_echarts(events=...)``: a node click returns its entity id.
CLICK_HANDLER = "function(params){ if (params.dataType === 'node') { return params.data.id; } }"

_PALETTE = [
    "#5470c6",
    "#91cc75",
    "#fac858",
    "#ee6666",
    "#73c0de",
    "#3ba272",
    "#fc8452",
    "#9a60b4",
    "#ea7ccc",
    "#48b8d0",
]


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


RING = 120.0


def radial_positions(hood: Neighbourhood) -> dict[uuid.UUID, tuple[float, float]]:
    """Root in the middle, depth-d entities on ring d (sorted by name, starting at 3 o'clock).

    Computed here rather than by a force simulation in the browser: a capped hub of 2,000
    nodes lays out instantly, and the picture is the same on every run.
    """
    rings: dict[int, list[Any]] = defaultdict(list)
    for n in hood.nodes:
        rings[n.depth].append(n)
    pos: dict[uuid.UUID, tuple[float, float]] = {}
    for depth, members in rings.items():
        members.sort(key=lambda n: (n.name.lower(), str(n.id)))
        if depth == 0:
            for n in members:
                pos[n.id] = (0.0, 0.0)
            continue
        offset = 0.0 if depth == 1 else math.pi / (len(members) + 1)
        for i, n in enumerate(members):
            angle = offset + 2 * math.pi * i / len(members)
            pos[n.id] = (
                round(depth * RING * math.cos(angle), 2),
                round(depth * RING * math.sin(angle), 2),
            )
    return pos


def echarts_options(hood: Neighbourhood, focus_id: uuid.UUID | None = None) -> dict[str, Any]:
    """A radial graph: node size by closeness to the root, colour by entity type."""
    pos = radial_positions(hood)
    types = sorted({n.type for n in hood.nodes})
    categories = [
        {"name": t, "itemStyle": {"color": _PALETTE[i % len(_PALETTE)]}}
        for i, t in enumerate(types)
    ]
    index = {t: i for i, t in enumerate(types)}
    big = len(hood.nodes) > 80  # beyond this, only the focused entity keeps its label
    edge_labels = len(hood.edges) <= 40
    nodes = []
    for n in hood.nodes:
        is_focus = n.id == (focus_id or hood.root_id)
        nodes.append(
            {
                "id": str(n.id),
                "name": n.name,
                "x": pos[n.id][0],
                "y": pos[n.id][1],
                "category": index[n.type],
                "symbolSize": 34 if n.depth == 0 else max(8, 22 - 5 * n.depth),
                "value": n.depth,
                "label": {"show": is_focus or n.depth <= (0 if big else 1)},
                "itemStyle": {"borderColor": "#222", "borderWidth": 3} if is_focus else {},
                "tooltip": {"formatter": f"{n.name} ({n.type}) · depth {n.depth}"},
            }
        )
    links = [
        {
            "source": str(e.source_id),
            "target": str(e.target_id),
            "value": e.type,
            "label": {"show": edge_labels, "formatter": e.type, "fontSize": 10},
        }
        for e in hood.edges
    ]
    return {
        # richText: tooltips are drawn on the canvas, so entity names are never parsed as HTML.
        "tooltip": {"show": True, "renderMode": "richText"},
        "legend": [{"data": types, "type": "scroll", "bottom": 0}],
        "animationDurationUpdate": 300,
        "series": [
            {
                "type": "graph",
                "layout": "none",
                "roam": True,
                "draggable": False,
                "categories": categories,
                "data": nodes,
                "links": links,
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 6,
                "emphasis": {"focus": "adjacency"},
                "lineStyle": {"opacity": 0.6, "curveness": 0.1},
            }
        ],
    }
