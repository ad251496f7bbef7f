"""In a real browser: the explorer draws the graph, a click on a node focuses it and the
details panel shows that entity and its relations."""

from __future__ import annotations

import json

import pytest

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import sign_in, wait_for_app

pytestmark = pytest.mark.e2e

EMAIL = "graph.admin@example.com"


def test_click_a_node_to_focus_it_and_see_its_details(
    live_app: str, live_services: Services, page
) -> None:  # type: ignore[no-untyped-def]
    admin = factories.admin_account(live_services, EMAIL, name="Grapher")
    report = live_services.knowledge_graph.import_data(
        admin,
        json.dumps(
            {
                "entities": [
                    {
                        "name": "Ada Lovelace",
                        "type": "person",
                        "description": "Wrote the first program.",
                    },
                    {
                        "name": "Charles Babbage",
                        "type": "person",
                        "description": "Designed the Analytical Engine.",
                    },
                ],
                "relations": [
                    {
                        "source": "Ada Lovelace",
                        "target": "Charles Babbage",
                        "type": "worked_with",
                    },
                    {
                        "source": "Charles Babbage",
                        "target": "Analytical Engine",
                        "type": "designed",
                        "target_type": "machine",
                    },
                ],
            }
        ),
        "json",
    )
    assert report.imported

    sign_in(page, live_app, EMAIL)
    page.get_by_text("Welcome, Grapher").wait_for()

    page.get_by_role("link", name="Knowledge graph").click()
    page.get_by_role("heading", name="Knowledge graph").wait_for()
    wait_for_app(page)
    # The first entity (by name) is focused: Ada, with one neighbour at depth 1.
    page.get_by_role("heading", name="Ada Lovelace").wait_for()
    page.get_by_text("Wrote the first program.").wait_for()
    canvas = page.locator("canvas").first
    canvas.wait_for()
    page.wait_for_timeout(800)  # the chart's first paint / animation
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 200

    # The root is drawn in the middle, its only neighbour on the same row to the right
    # (radial layout, first ring entity at 3 o'clock). Find it by the pointer cursor.
    cy = box["y"] + box["height"] / 2
    cx = box["x"] + box["width"] / 2
    target = None
    for step in range(30, int(box["width"] / 2), 6):
        page.mouse.move(cx + step, cy)
        cursor = page.evaluate(
            "([x, y]) => { const el = document.elementFromPoint(x, y);"
            " return el && el.parentElement ? getComputedStyle(el.parentElement).cursor : ''; }",
            [cx + step, cy],
        )
        if cursor == "pointer":
            target = cx + step + 3
            break
    assert target is not None, "no clickable node found right of the centre"
    page.mouse.click(target, cy)
    wait_for_app(page)
    page.get_by_role("heading", name="Charles Babbage").wait_for()
    page.get_by_text("Designed the Analytical Engine.").wait_for()
    # the details panel lists its relations in both directions
    details = page.locator("[data-testid='stDataFrame']").first
    details.wait_for()
    assert page.get_by_text("1 outgoing · 1 incoming").count() == 1
