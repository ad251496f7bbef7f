"""The explorer's picture: radial positions, ECharts options, the click value."""

from __future__ import annotations

import json
import math
import uuid

from jarvis.services.knowledge_graph import GraphNode, Neighbourhood, RelationView
from jarvis.ui.graph_view import RING, chart_event_value, echarts_options, radial_positions


def hood(n_leaves: int) -> Neighbourhood:
    root = GraphNode(uuid.uuid4(), "Root <b>", "hub", "", 0)
    leaves = [
        GraphNode(uuid.uuid4(), f"Leaf {i:03d}", "leaf" if i % 2 else "other", "", 1)
        for i in range(n_leaves)
    ]
    far = GraphNode(uuid.uuid4(), "Far", "leaf", "", 2)
    edges = [RelationView(uuid.uuid4(), root.id, leaf.id, "has") for leaf in leaves]
    edges.append(RelationView(uuid.uuid4(), leaves[0].id, far.id, "knows"))
    return Neighbourhood(
        root.id, [root, *leaves, far], edges, truncated=False, node_limit=500, depth=2
    )


def test_root_is_centred_and_rings_follow_depth() -> None:
    h = hood(4)
    pos = radial_positions(h)
    assert pos[h.root_id] == (0.0, 0.0)
    for node in h.nodes[1:]:
        x, y = pos[node.id]
        assert math.isclose(math.hypot(x, y), RING * node.depth, rel_tol=1e-3)
    assert pos[h.nodes[1].id] == (RING, 0.0)  # the first depth-1 entity sits at 3 o'clock


def test_options_carry_every_node_and_link_and_are_json() -> None:
    h = hood(600)
    options = echarts_options(h)
    series = options["series"][0]
    assert series["type"] == "graph" and series["layout"] == "none"
    assert len(series["data"]) == 602 and len(series["links"]) == 601
    assert {d["id"] for d in series["data"]} == {str(n.id) for n in h.nodes}
    assert options["tooltip"]["renderMode"] == "richText"  # names never parsed as HTML
    assert not series["links"][0]["label"]["show"]  # big graphs hide edge labels
    json.dumps(options)


def test_click_value_is_an_entity_id_or_nothing() -> None:
    some = str(uuid.uuid4())
    assert chart_event_value({"chart_event": some}) == some
    assert chart_event_value({"chart_event": "javascript:alert(1)"}) is None
    assert chart_event_value(None) is None
    assert chart_event_value({}) is None
