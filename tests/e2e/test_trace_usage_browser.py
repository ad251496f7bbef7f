"""A run's trace and the usage page in a real browser: a chat answer with a tool call opens
its trace (model call, the tool call with its arguments and result, latency, tokens, cost);
Usage on "7 d" shows the headline and the latency by model; another user cannot open the
trace's URL."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.e2e.conftest import ask, sign_in, wait_for_app

pytestmark = pytest.mark.e2e

QUESTION = "what is 2*(3+4)"


def test_trace_from_a_chat_answer_and_usage_headline(
    live_app: str, live_services, browser, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    page.set_default_timeout(60_000)  # shared machines can be slow
    admin = factories.admin_account(live_services, "trace.admin@example.com", name="Ada")
    factories.account(live_services, "trace.user@example.com", name="Tess", actor=admin)
    factories.account(live_services, "trace.other@example.com", name="Otto", actor=admin)
    try:
        trace_url = chat_and_open_the_trace(live_app, page)
        usage_on_seven_days(live_app, page)
        other = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            stranger = other.new_page()
            stranger.set_default_timeout(60_000)
            sign_in(stranger, live_app, "trace.other@example.com")
            stranger.goto(trace_url)
            wait_for_app(stranger)
            stranger.get_by_text("That run does not exist, or it is not yours.").wait_for()
            assert stranger.get_by_text("Tool call · calculator").count() == 0
        finally:
            other.close()
    except Exception:
        page.screenshot(path=str(tmp_path / "trace-failure.png"))
        raise


def chat_and_open_the_trace(live_app: str, page) -> str:  # type: ignore[no-untyped-def]
    sign_in(page, live_app, "trace.user@example.com")
    page.goto(live_app + "/chat")
    wait_for_app(page)
    ask(page, QUESTION)
    page.get_by_text("calculator · ok", exact=False).first.wait_for()
    trace = page.get_by_role("link", name=re.compile("Trace")).last
    trace.wait_for()
    trace.click()
    page.wait_for_url(re.compile(r"/trace\?run=[0-9a-f-]{36}"))
    wait_for_app(page)
    page.get_by_role("heading", name="Trace").wait_for()
    page.get_by_text("Model call", exact=False).first.wait_for()
    page.get_by_text("Tool call · calculator").wait_for()
    # its arguments and its result (the prompt sent to the model holds them too, folded away)
    page.get_by_text("2*(3+4)", exact=False).filter(visible=True).first.wait_for()
    page.get_by_text("14", exact=True).filter(visible=True).first.wait_for()
    for label in ("Latency", "Tokens", "Cost"):
        page.get_by_test_id("stMetricLabel").filter(has_text=label).first.wait_for()
    tokens = page.get_by_test_id("stMetric").filter(has_text="Tokens").inner_text()
    assert re.search(r"\d", tokens), tokens
    cost = page.get_by_test_id("stMetric").filter(has_text="Cost").inner_text()
    assert "$" in cost, cost
    return str(page.url)


def usage_on_seven_days(live_app: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_app + "/usage")
    wait_for_app(page)
    page.get_by_role("heading", name="Usage and cost").wait_for()
    page.get_by_test_id("stButtonGroup").get_by_text("7 d", exact=True).click()
    wait_for_app(page)
    page.get_by_text("Cost, the last 7 days").wait_for()
    headline = page.get_by_test_id("stMetric").filter(has_text="Cost, the last 7 days")
    assert re.search(r"\$\d+\.\d{2}", headline.inner_text()), headline.inner_text()
    page.get_by_text("This month so far:", exact=False).wait_for()
    page.get_by_text("At this pace you will spend about", exact=False).wait_for()
    page.get_by_role("heading", name="Cost and latency by model").wait_for()
