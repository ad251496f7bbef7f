"""In a real browser: a graph import runs as a background job. The user uploads a file on the
Graph page, sees a progress bar, then the summary; the entities are in their graph and the
page's counts show them."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import go_to, open_tab, sign_in, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL = "graph.importer@example.com"
N = 1500


def test_a_graph_import_shows_progress_then_its_summary(
    live_app: str, live_services: Services, page, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    who = factories.admin_account(live_services, EMAIL, name="Importer")
    csv = tmp_path / "gadgets.csv"
    csv.write_text(
        "name,type,description\n"
        + "".join(f"Gadget {i},gadget,gadget number {i} of the lab\n" for i in range(N))
    )

    sign_in(page, live_app, EMAIL)
    go_to(page, "Knowledge graph")
    page.get_by_role("heading", name="Knowledge graph").wait_for()
    wait_for_app(page)
    open_tab(page, "Import")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(csv))
    page.get_by_text("gadgets.csv").wait_for()
    page.get_by_role("button", name="Import", exact=True).click()

    # the click returns at once: a progress bar follows the job on the worker
    page.locator("[data-testid='stProgress']").wait_for(timeout=15_000)
    page.get_by_text(f"Imported {N:,} new entities (0 already existed) and 0 relations.").wait_for(
        timeout=180_000
    )
    expect(page.locator("[data-testid='stProgress']")).to_have_count(0)  # once the page redraws
    # the page's counts were refreshed when the job finished
    page.get_by_text(f"{N:,} entities · 0 relations").wait_for()
    assert live_services.knowledge_graph.stats(who)["entities"] == N
    [job] = live_services.jobs.recent(who, "graph_import")
    assert job.state == "succeeded" and job.done == job.total == N
