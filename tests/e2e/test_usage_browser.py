"""In a real browser: the usage page draws its plotly charts from recorded runs, the model
filter narrows them, and the admin sees everyone with the ranking."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import go_to, sign_in, wait_for_app

pytestmark = pytest.mark.e2e

EMAIL = "meter.admin@example.com"


def test_usage_page_shows_charts_for_recorded_runs(
    live_app: str, live_services: Services, page
) -> None:  # type: ignore[no-untyped-def]
    admin = factories.admin_account(live_services, EMAIL, name="Meter")
    worker = factories.account(live_services, "worker@example.com", name="Worker", actor=admin)
    now = live_services.clock.now() - timedelta(hours=1)
    for who in (admin, worker):
        factories.finished_run(
            live_services,
            who,
            "openai",
            "gpt-4o",
            now,
            input_tokens=400_000,
            output_tokens=50_000,
            tools=(("memory_search", "ok", 40),),
        )
        factories.finished_run(
            live_services,
            who,
            "anthropic",
            "claude-sonnet-4-20250514",
            now + timedelta(minutes=5),
            input_tokens=100_000,
            output_tokens=20_000,
            cache_read_tokens=300_000,
        )

    sign_in(page, live_app, EMAIL)
    page.get_by_text("Welcome, Meter").wait_for()

    go_to(page, "Usage")
    page.get_by_role("heading", name="Usage and cost").wait_for()
    wait_for_app(page)
    page.get_by_text("Daily cost by model").wait_for()
    page.get_by_text("Tokens by type").wait_for()
    page.get_by_text("Top tools").wait_for()
    # Three plotly charts, really drawn (an SVG with bars), with the models in the legend.
    # (each drawn plot holds several .main-svg layers: wait for three charts that each have one)
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"[data-testid='stPlotlyChart']\")]"
        ".filter(c => c.querySelector('.js-plotly-plot .main-svg')).length >= 3",
        timeout=30_000,
    )
    assert page.locator("[data-testid='stPlotlyChart']").count() == 3
    assert page.locator(".js-plotly-plot .legendtext", has_text="gpt-4o").count() >= 1
    assert (
        page.locator(".js-plotly-plot .legendtext", has_text="claude-sonnet-4-20250514").count()
        >= 1
    )
    page.get_by_text("Download daily breakdown (CSV)").wait_for()

    # Everyone: the ranking lists both users.
    page.get_by_label("User").click()
    page.get_by_role("option", name="Everyone").click()
    wait_for_app(page)
    page.get_by_text("Users by cost").wait_for()
    page.get_by_text("each user's local days", exact=False).wait_for()
