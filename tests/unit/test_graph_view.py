"""The explorer's picture: colours per type, expanding in place, path highlight, table cells,
ECharts options and the click value."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from jarvis.services.knowledge_graph import (
    EntityDetails,
    EntityView,
    GraphNode,
    Neighbourhood,
    PathResult,
    RelationView,
)
from jarvis.ui.graph_view import (
    BLANK,
    DIM_OPACITY,
    PALETTE,
    PATH_COLOUR,
    RING,
    cell,
    chart_event_value,
    echarts_options,
    edge_rows,
    merge_neighbourhoods,
    node_rows,
    parse_ids,
    path_text,
    radial_positions,
    relation_rows,
    type_colour,
    with_path,
)


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


def expansion(
    of: GraphNode, neighbours: list[GraphNode], edges: list[RelationView]
) -> Neighbourhood:
    """The depth-1 neighbourhood of ``of`` as the service returns it (the node at depth 0)."""
    centre = GraphNode(of.id, of.name, of.type, of.description, 0)
    near = [GraphNode(n.id, n.name, n.type, n.description, 1) for n in neighbours]
    return Neighbourhood(of.id, [centre, *near], edges, truncated=False, node_limit=500, depth=1)


# -- colours -----------------------------------------------------------------------------------


def test_a_type_has_one_colour_in_every_view_and_process() -> None:
    assert type_colour("person") == type_colour("person") == type_colour(" Person ")
    assert type_colour("person") in PALETTE
    # another interpreter (another hash seed) gives the same colour: not Python's hash()
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "from jarvis.ui.graph_view import type_colour as c; print(c('person'), c('city'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    ).stdout.split()
    assert other == [type_colour("person"), type_colour("city")]
    # the colour does not depend on which other types are on screen
    h = hood(3)
    small = echarts_options(h)["series"][0]["categories"]
    with_more = merge_neighbourhoods(
        h, [expansion(h.nodes[1], [GraphNode(uuid.uuid4(), "Zed", "zebra", "", 1)], [])]
    )
    big = echarts_options(with_more)["series"][0]["categories"]
    colour = {c["name"]: c["itemStyle"]["color"] for c in big}
    assert all(colour[c["name"]] == c["itemStyle"]["color"] for c in small)
    assert colour == {t: type_colour(t) for t in ("hub", "leaf", "other", "zebra")}
    # and the types spread over the palette (no single colour for everything)
    assert len({type_colour(t) for t in ("person", "city", "company", "project", "event")}) >= 4


def test_every_node_is_drawn_in_its_type_colour_with_a_legend() -> None:
    options = echarts_options(hood(4))
    assert options["legend"][0]["data"] == ["hub", "leaf", "other"]
    for node in options["series"][0]["data"]:
        category = options["series"][0]["categories"][node["category"]]
        assert (
            node["itemStyle"]["color"]
            == category["itemStyle"]["color"]
            == type_colour(category["name"])
        )


# -- expanding in place ------------------------------------------------------------------------


def test_expanding_adds_the_clicked_nodes_neighbours_and_keeps_everything_shown() -> None:
    h = hood(3)
    before = merge_neighbourhoods(h)
    leaf = h.nodes[1]
    new_a = GraphNode(uuid.uuid4(), "New A", "leaf", "", 1)
    new_b = GraphNode(uuid.uuid4(), "New B", "other", "", 1)
    back = h.edges[0]  # root -> leaf, already shown
    grown = merge_neighbourhoods(
        h,
        [
            expansion(
                leaf,
                [h.nodes[0], new_a, new_b],  # the root is a neighbour too: no duplicate
                [
                    back,
                    RelationView(uuid.uuid4(), leaf.id, new_a.id, "knows"),
                    RelationView(uuid.uuid4(), new_b.id, leaf.id, "likes"),
                ],
            )
        ],
    )
    ids = [n.id for n in grown.nodes]
    assert len(ids) == len(set(ids)) == len(before.nodes) + 2
    assert {n.id for n in before.nodes} <= set(ids)
    edge_ids = [e.id for e in grown.edges]
    assert len(edge_ids) == len(set(edge_ids)) == len(before.edges) + 2
    # nothing already drawn moves; the new nodes sit around the expanded one, a ring further out
    assert all(grown.positions[n.id] == before.positions[n.id] for n in before.nodes)
    for new in (new_a, new_b):
        x, y = grown.positions[new.id]
        lx, ly = grown.positions[leaf.id]
        assert math.hypot(x - lx, y - ly) >= RING * 0.8
        assert math.hypot(x, y) > math.hypot(lx, ly)
        assert grown.node(new.id) is not None and grown.node(new.id).depth == 2  # type: ignore[union-attr]
    assert grown.expanded == (leaf.id,)
    assert len(echarts_options(grown)["series"][0]["data"]) == len(ids)


def test_expansions_merge_in_click_order_and_skip_what_is_gone() -> None:
    h = hood(2)
    leaf = h.nodes[1]
    a = GraphNode(uuid.uuid4(), "A", "x", "", 1)
    b = GraphNode(uuid.uuid4(), "B", "x", "", 1)
    first = expansion(leaf, [a], [RelationView(uuid.uuid4(), leaf.id, a.id, "r")])
    second = expansion(a, [b], [RelationView(uuid.uuid4(), a.id, b.id, "r")])
    orphan = expansion(GraphNode(uuid.uuid4(), "Gone", "x", "", 1), [], [])
    graph = merge_neighbourhoods(h, [first, second, first, orphan])
    assert graph.expanded == (leaf.id, a.id)
    assert graph.node(b.id) is not None and graph.node(b.id).depth == 3  # type: ignore[union-attr]
    # the same clicks give the same picture (positions are not random)
    assert merge_neighbourhoods(h, [first, second]).positions == graph.positions


def test_root_is_centred_and_rings_follow_depth() -> None:
    h = hood(4)
    pos = radial_positions(h)
    assert pos[h.root_id] == (0.0, 0.0)
    for node in h.nodes[1:]:
        x, y = pos[node.id]
        assert math.isclose(math.hypot(x, y), RING * node.depth, rel_tol=1e-3)
    assert pos[h.nodes[1].id] == (RING, 0.0)  # the first depth-1 entity sits at 3 o'clock


# -- labels ------------------------------------------------------------------------------------


def test_labels_up_to_depth_two_overlaps_hidden_depth_three_on_zoom() -> None:
    h = hood(2)
    deep = GraphNode(uuid.uuid4(), "Deep", "leaf", "", 1)
    far = h.nodes[-1]
    graph = merge_neighbourhoods(
        h, [expansion(far, [deep], [RelationView(uuid.uuid4(), far.id, deep.id, "r")])]
    )
    series = echarts_options(graph)["series"][0]
    by_name = {d["name"]: d for d in series["data"]}
    assert series["labelLayout"] == {"hideOverlap": True}
    assert by_name["Root <b>"]["label"]["show"] and by_name["Leaf 000"]["label"]["show"]
    assert by_name["Far"]["label"]["show"]  # depth 2
    assert "label" not in by_name["Deep"]  # depth 3 follows the series: hidden until zoomed
    assert series["label"]["show"] is False and series["emphasis"]["label"]["show"] is True
    assert all(d["label"]["fontSize"] >= 12 for d in series["data"] if "label" in d)


# -- the path ----------------------------------------------------------------------------------


def _entity(n: GraphNode) -> EntityView:
    return EntityView(n.id, n.name, n.type)


def test_a_path_marks_exactly_its_nodes_and_edges_and_dims_the_rest() -> None:
    h = hood(3)
    root, leaf0, far = h.nodes[0], h.nodes[1], h.nodes[-1]
    e1 = next(e for e in h.edges if e.target_id == leaf0.id)
    e2 = next(e for e in h.edges if e.target_id == far.id)
    path = PathResult(True, [_entity(root), _entity(leaf0), _entity(far)], [e1, e2], 2)
    graph = with_path(merge_neighbourhoods(h), path)
    assert graph.path_node_ids == {root.id, leaf0.id, far.id}
    assert graph.path_edge_ids == {e1.id, e2.id}
    series = echarts_options(graph)["series"][0]
    on = {d["id"] for d in series["data"] if d["itemStyle"].get("borderColor") == PATH_COLOUR}
    dim = {d["id"] for d in series["data"] if d["itemStyle"].get("opacity") == DIM_OPACITY}
    assert on == {str(root.id), str(leaf0.id), str(far.id)}
    assert dim == {str(n.id) for n in h.nodes} - on
    red = [
        (lk["source"], lk["target"])
        for lk in series["links"]
        if lk.get("lineStyle", {}).get("color") == PATH_COLOUR
    ]
    assert sorted(red) == sorted([(str(root.id), str(leaf0.id)), (str(leaf0.id), str(far.id))])
    assert all(
        lk["lineStyle"]["opacity"] < DIM_OPACITY
        for lk in series["links"]
        if (lk["source"], lk["target"]) not in red
    )
    # with no path nothing is dimmed
    plain = echarts_options(merge_neighbourhoods(h))["series"][0]
    assert not any("opacity" in d["itemStyle"] for d in plain["data"])
    assert path_text(path) == "Root <b> —has→ Leaf 000 —knows→ Far"


def test_a_path_beyond_the_picture_is_added_to_it() -> None:
    h = hood(1)
    leaf = h.nodes[1]
    out1 = GraphNode(uuid.uuid4(), "Out 1", "x", "", 0)
    out2 = GraphNode(uuid.uuid4(), "Out 2", "x", "", 0)
    r1 = RelationView(
        uuid.uuid4(), leaf.id, out1.id, "r", source_name="Leaf 000", target_name="Out 1"
    )
    r2 = RelationView(uuid.uuid4(), out2.id, out1.id, "r", source_name="Out 2", target_name="Out 1")
    path = PathResult(True, [_entity(leaf), _entity(out1), _entity(out2)], [r1, r2], 2)
    before = merge_neighbourhoods(h)
    graph = with_path(before, path)
    assert len(graph.nodes) == len(before.nodes) + 2
    assert {e.id for e in graph.edges} >= {r1.id, r2.id}
    assert all(graph.positions[n.id] == before.positions[n.id] for n in before.nodes)
    assert len(set(graph.positions.values())) == len(graph.positions)  # no two on one spot
    assert path_text(path) == "Leaf 000 —r→ Out 1 ←r— Out 2"
    assert with_path(before, PathResult(False, [], [], 3)) is before


# -- tables ------------------------------------------------------------------------------------


def test_tables_never_show_none_and_dates_read_as_dates() -> None:
    me = EntityView(uuid.uuid4(), "Ada", "person")
    other = uuid.uuid4()
    details = EntityDetails(
        me,
        [
            RelationView(uuid.uuid4(), me.id, other, "knows", 1.0, None, None, {}, "Ada", "Bob"),
            RelationView(
                uuid.uuid4(),
                other,
                me.id,
                "mentors",
                0.75,
                datetime(2024, 3, 1, tzinfo=UTC),
                None,
                {},
                "Bob",
                "Ada",
            ),
        ],
        1,
        1,
    )
    rows = relation_rows(details)
    text = json.dumps(rows, ensure_ascii=False)
    assert "None" not in text and "null" not in text
    assert rows[0] == {
        "direction": "→",
        "relation": "knows",
        "entity": "Bob",
        "weight": "1",
        "valid from": BLANK,
        "valid to": BLANK,
    }
    assert rows[1]["direction"] == "←" and rows[1]["valid from"] == "2024-03-01"
    assert rows[1]["weight"] == "0.75"
    assert "None" not in json.dumps(
        edge_rows(details.relations) + node_rows(merge_neighbourhoods(hood(2)))
    )
    assert cell(datetime(2024, 3, 1, 14, 5, tzinfo=UTC)) == "2024-03-01 14:05"
    assert cell(None) == cell("") == BLANK


# -- options and the click ---------------------------------------------------------------------


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


def test_ids_from_the_url() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert parse_ids(f"{a},{b},nonsense,{a}") == [a, b]
    assert parse_ids(None) == [] and parse_ids("") == []
