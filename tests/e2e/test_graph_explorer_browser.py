"""In a real browser, the explorer as in Neo4j Bloom: type a name and pick it (the graph centres
there), click a node (its neighbours join the picture, nothing shown goes away), find a path (it
is drawn highlighted), read tables without "None"; a new user is told where to start.

What the chart draws is read from the options the page sent to it (the Streamlit messages on
the websocket, decoded with Streamlit's own protobuf classes): the canvas has no DOM to query.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from jarvis.bootstrap import Services
from jarvis.ui.graph_view import DIM_OPACITY, PATH_COLOUR, type_colour
from tests import factories
from tests.e2e.conftest import go_to, open_tab, sign_in, wait_for_app

pytestmark = pytest.mark.e2e

EMAIL = "graph.admin@example.com"

GRAPH = {
    "entities": [
        {"name": "Ada Lovelace", "type": "person", "description": "Wrote the first program."},
        {
            "name": "Charles Babbage",
            "type": "person",
            "description": "Designed the Analytical Engine.",
        },
    ],
    "relations": [
        {"source": "Ada Lovelace", "target": "Charles Babbage", "type": "worked_with"},
        {
            "source": "Charles Babbage",
            "target": "Analytical Engine",
            "type": "designed",
            "target_type": "machine",
        },
        {
            "source": "Analytical Engine",
            "target": "Punched cards",
            "type": "reads",
            "target_type": "medium",
        },
        {"source": "Mary Somerville", "target": "Ada Lovelace", "type": "mentored"},
    ],
}


class ChartFeed:
    """Every ECharts options object the server sent to this page, in order."""

    def __init__(self, page: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: str | bytes) -> None:
        if not isinstance(payload, bytes):
            return
        msg = ForwardMsg()
        try:
            msg.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - not a ForwardMsg: not ours
            return
        if not (msg.HasField("delta") and msg.delta.HasField("new_element")):
            return
        element = msg.delta.new_element
        if not element.HasField("bidi_component"):
            return
        bidi = element.bidi_component
        if "echarts" not in bidi.component_name:
            return
        raw = bidi.json or (bidi.mixed.json if bidi.HasField("mixed") else "")
        if raw:
            self.sent.append(json.loads(raw)["options"])

    def latest(self) -> dict[str, Any]:
        assert self.sent, "no chart was drawn"
        return self.sent[-1]


def nodes(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The drawn nodes by entity name."""
    return {d["name"]: d for d in options["series"][0]["data"]}


def pick(page: Any, key: str, typed: str, option: str) -> None:
    """Type into the search box with widget key ``key`` and pick ``option`` from its list."""
    box = page.locator(f".st-key-{key} input")
    wanted = page.get_by_role("option", name=option)
    for attempt in range(4):
        # A rerun that lands while typing (or just after) redraws the box, drops what was typed
        # and closes its list (seen on a loaded machine): type again until the option is picked.
        wait_for_app(page)
        box.click()
        box.fill(typed)
        try:
            wanted.click(timeout=8000)
            break
        except PlaywrightTimeoutError:
            if attempt == 3:
                raise
    wait_for_app(page)


def click_node(page: Any, from_left_edge: bool = False) -> None:
    """Click the first node met moving right from the chart's centre, or from its left edge
    (a node is where ECharts sets the pointer cursor)."""
    canvas = page.locator(".st-key-graph_chart canvas").first
    canvas.wait_for()
    # Wait for the chart's first paint and its animation to end (the canvas stops changing):
    # on a loaded machine the animation outlasts any fixed pause, and a node met while it
    # still moves is not where the click lands.
    page.wait_for_timeout(300)
    shot = canvas.screenshot()
    for _ in range(40):
        page.wait_for_timeout(250)
        again = canvas.screenshot()
        if again == shot:
            break
        shot = again
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 200
    cy = box["y"] + box["height"] / 2
    start = box["x"] + 5 if from_left_edge else box["x"] + box["width"] / 2 + 30
    for dy in (0, -12, 12):
        for x in range(int(start), int(box["x"] + box["width"]), 4):
            y = cy + dy
            page.mouse.move(x, y)
            cursor = page.evaluate(
                "([x, y]) => { const el = document.elementFromPoint(x, y);"
                " return el && el.parentElement ? getComputedStyle(el.parentElement).cursor : ''; }",
                [x, y],
            )
            if cursor == "pointer":
                page.mouse.click(x + 3, y)
                wait_for_app(page)
                return
    raise AssertionError("no clickable node found")


def details_text(page: Any) -> str:
    """The text of the details panel's table (the first st.dataframe: the graph comes first),
    read from the grid's accessible cells."""
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for()
    cells = grid.locator("[role='gridcell']")
    cells.first.wait_for(state="attached")
    return " | ".join(cells.all_text_contents())


def open_graph(page: Any, live_app: str, services: Services) -> ChartFeed:
    admin = factories.admin_account(services, EMAIL, name="Grapher")
    assert services.knowledge_graph.import_data(admin, json.dumps(GRAPH), "json").imported
    feed = ChartFeed(page)
    sign_in(page, live_app, EMAIL)
    go_to(page, "Knowledge graph")
    page.get_by_role("heading", name="Knowledge graph").wait_for()
    wait_for_app(page)
    return feed


def test_search_centres_and_a_click_expands_in_place(
    live_app: str, live_services: Services, page: Any
) -> None:
    feed = open_graph(page, live_app, live_services)
    # The first entity by name is centred: Ada, with her two neighbours.
    page.get_by_role("heading", name="Ada Lovelace").wait_for()
    assert set(nodes(feed.latest())) == {"Ada Lovelace", "Charles Babbage", "Mary Somerville"}

    # One step: type part of a name, pick it, and the graph centres there.
    pick(page, "graph_search", "babb", "Charles Babbage · person")
    page.get_by_role("heading", name="Charles Babbage").wait_for()
    page.get_by_text("Designed the Analytical Engine.").wait_for()
    before = nodes(feed.latest())
    assert set(before) == {"Charles Babbage", "Ada Lovelace", "Analytical Engine"}
    assert (before["Charles Babbage"]["x"], before["Charles Babbage"]["y"]) == (0, 0)
    page.wait_for_url("**entity=*")
    # one colour per type, the same as in the first view
    assert before["Ada Lovelace"]["itemStyle"]["color"] == type_colour("person")
    assert before["Analytical Engine"]["itemStyle"]["color"] == type_colour("machine")
    # the details table says "—" for missing dates, never "None"
    details = details_text(page)
    assert "worked_with" in details and "—" in details and "None" not in details

    # Click Ada (right of Charles, in the middle): her other neighbour joins, everything shown stays put.
    click_node(page)
    page.get_by_role("heading", name="Ada Lovelace").wait_for()
    after = nodes(feed.latest())
    assert set(after) == set(before) | {"Mary Somerville"}
    for name, node in before.items():
        assert (after[name]["x"], after[name]["y"]) == (node["x"], node["y"]), name
    page.wait_for_url("**open=*")
    page.get_by_text("1 expanded").wait_for()

    # Click the machine (the leftmost node): the punched cards join too; Mary is still there.
    click_node(page, from_left_edge=True)
    page.get_by_role("heading", name="Analytical Engine").wait_for()
    assert set(nodes(feed.latest())) == set(after) | {"Punched cards"}
    assert "None" not in details_text(page)

    # The URL names both expanded entities; a reload (a new session) shows the same
    # exploration, from the URL.
    page.wait_for_url(re.compile(r"open=[^&]+(%2C|,)[^&]+"))
    page.reload()
    wait_for_app(page)
    page.get_by_text("2 expanded").wait_for()
    assert set(nodes(feed.latest())) == set(after) | {"Punched cards"}

    # Reset: back to the centre's own neighbourhood.
    page.get_by_role("button", name="Reset").click()
    wait_for_app(page)
    page.get_by_text("0 expanded").wait_for()
    assert set(nodes(feed.latest())) == set(before)


def test_path_finder_highlights_the_path_on_the_graph(
    live_app: str, live_services: Services, page: Any
) -> None:
    feed = open_graph(page, live_app, live_services)
    page.get_by_role("heading", name="Ada Lovelace").wait_for()
    # the first tab below the graph
    assert page.get_by_role("tab", name="Path finder").get_attribute("aria-selected") == "true"
    # "From" starts at the centred entity (Ada); pick the far end.
    pick(page, "graph_path_to", "punched", "Punched cards · medium")
    page.get_by_role("button", name="Find path").click()
    wait_for_app(page)
    page.get_by_text("Shortest path: 3 relation(s)").wait_for()
    described = (
        "Ada Lovelace —worked_with→ Charles Babbage —designed→ Analytical Engine "
        "—reads→ Punched cards"
    )
    page.get_by_text(f"Path highlighted: {described}").wait_for()

    drawn = feed.latest()
    by_name = nodes(drawn)
    on_path = {"Ada Lovelace", "Charles Babbage", "Analytical Engine", "Punched cards"}
    # the path's entities were added to the picture (they were beyond depth 1) and marked
    assert set(by_name) == on_path | {"Mary Somerville"}
    marked = {n for n, d in by_name.items() if d["itemStyle"].get("borderColor") == PATH_COLOUR}
    dimmed = {n for n, d in by_name.items() if d["itemStyle"].get("opacity") == DIM_OPACITY}
    assert marked == on_path and dimmed == {"Mary Somerville"}
    ids = {d["id"]: n for n, d in by_name.items()}
    red = {
        (ids[lk["source"]], ids[lk["target"]])
        for lk in drawn["series"][0]["links"]
        if lk.get("lineStyle", {}).get("color") == PATH_COLOUR
    }
    assert red == {
        ("Ada Lovelace", "Charles Babbage"),
        ("Charles Babbage", "Analytical Engine"),
        ("Analytical Engine", "Punched cards"),
    }

    page.get_by_role("button", name="Clear path").click()
    wait_for_app(page)
    page.get_by_text("Path highlighted:").wait_for(state="detached")

    def dimmed_any() -> bool:
        return any("opacity" in d["itemStyle"] for d in feed.latest()["series"][0]["data"])

    for _ in range(40):  # the redrawn chart's message may trail the status widget
        if not dimmed_any():
            break
        page.wait_for_timeout(250)
    assert not dimmed_any()


def test_a_new_user_is_told_where_to_start(
    live_app: str, live_services: Services, page: Any
) -> None:
    factories.admin_account(live_services, EMAIL, name="Newcomer")
    sign_in(page, live_app, EMAIL)
    go_to(page, "Knowledge graph")
    page.get_by_role("heading", name="Knowledge graph").wait_for()
    wait_for_app(page)
    page.get_by_text("Your knowledge graph is empty.").wait_for()
    assert page.get_by_text("Add & edit tab below").count() == 1
    assert page.get_by_text("Import tab").count() == 1
    # and those tabs are there, with the form it names
    open_tab(page, "Add & edit")
    page.get_by_role("button", name="Add entity").wait_for()
