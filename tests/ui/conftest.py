"""AppTest fixtures: run ``app.py`` against a fresh, empty, migrated database.

* ``app_settings``  a fresh database (a copy of the session's template) the app under test uses
* ``new_app``       ``AppTest`` of ``app.py``
* :func:`open_page` sign in as someone and open one page (users come from ``tests/factories.py``)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from jarvis.config import Settings, get_settings
from jarvis.identity import Principal
from jarvis.ui.navigation import PAGES
from tests.conftest import TEST_APP_PASSWORD, TEST_JWT_SECRET, TEST_MASTER_KEY

ROOT = Path(__file__).resolve().parents[2]


def point_app_at(monkeypatch: pytest.MonkeyPatch, s: Settings) -> None:
    monkeypatch.setenv("DATABASE_URL", s.owner_url())
    monkeypatch.setenv("JARVIS_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("JARVIS_MASTER_KEY", TEST_MASTER_KEY)
    monkeypatch.setenv("JARVIS_JWT_SECRET", TEST_JWT_SECRET)
    monkeypatch.setenv("JARVIS_DB_APP_PASSWORD", TEST_APP_PASSWORD)
    monkeypatch.setenv("JARVIS_ENV", "test")
    get_settings.cache_clear()
    st.cache_resource.clear()


@pytest.fixture
def app_settings(
    fresh_database: Callable[[], Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A fresh empty database the app under test uses (env + caches reset)."""
    s = fresh_database()
    point_app_at(monkeypatch, s)
    yield s
    get_settings.cache_clear()
    st.cache_resource.clear()


@pytest.fixture
def new_app() -> Callable[[], AppTest]:
    def make() -> AppTest:
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)

    return make


def sign_in_as(at: AppTest, principal: Principal) -> AppTest:
    """Act as ``principal`` in the next run (the app opens a real, revocable server session).

    The back door of ``jarvis/ui/session.py``: it works only with ``JARVIS_ENV=test`` (which
    :func:`point_app_at` sets); a dev or production app ignores it.
    """
    at.session_state["jarvis_principal"] = principal
    return at


def open_page(new_app: Callable[[], AppTest], page: str, who: Principal) -> AppTest:
    """Run ``app.py`` as ``who`` on ``page`` (e.g. ``"app_pages/memory.py"``); no exception."""
    at = sign_in_as(new_app(), who)
    at.switch_page(page)
    at = at.run()
    if any(spec.path == page and spec.admin_only for spec in PAGES):
        # The first run turns the principal into a session; admin-only pages are in the
        # navigation from the second run on, so open the page again.
        at.switch_page(page)
        at = at.run()
    assert not at.exception, at.exception
    return at
