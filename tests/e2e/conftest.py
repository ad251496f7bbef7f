"""Browser tests: the real one-process app (uvicorn serving ``jarvis.asgi:create_app``, the UI
and ``/api/v1``, as ``jarvis up`` does) on a fresh database, driven by Playwright in Debian's
Chromium (``/usr/bin/chromium``; ``.ci/run`` installs it).

Fixtures:
* ``live_app``  base URL of a running app on an empty migrated database (per test: the test
  worker's one app, its database emptied before each test; ``own_live`` starts a new one)
* ``shared_live`` / ``shared_services`` one such app for a whole module, and services on it
* ``page``      a Playwright page in a fresh browser context
* ``live_settings`` the settings of that database
* ``live_services`` services on that database, to prepare data with ``tests/factories.py``

Helpers: :func:`sign_in` (the one way a browser test signs in), :func:`wait_for_app`,
:func:`fill`, :func:`ask` (send a chat question).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from psycopg import sql

from jarvis.bootstrap import Services, build_services
from jarvis.config import Settings
from jarvis.security.passwords import PasswordHasher
from tests import factories
from tests.conftest import (
    TEST_OUTBOUND_ALLOWLIST,
    app_environment,
    plain_url,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("JARVIS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveApp:
    url: str
    settings: Settings
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_app(s: Settings, log_path: Path, extra_env: dict[str, str] | None = None) -> LiveApp:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        app_environment(
            s,
            JARVIS_OUTBOUND_ALLOWLIST=TEST_OUTBOUND_ALLOWLIST,
            STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        )
    )
    env.update(extra_env or {})
    # The command `jarvis up` runs (jarvis/cli): the UI and the API in one process.
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "jarvis.asgi:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-proxy-headers",
        "--timeout-graceful-shutdown",
        "5",
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    # Importing the SDKs alone takes a minute on a busy 2-core machine.
    start_s = float(os.environ.get("JARVIS_TEST_APP_START_SECONDS", "180"))
    deadline = time.monotonic() + start_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the app exited early:\n" + log_path.read_text(errors="replace"))
        try:
            # Both halves: the UI's health check, and the API (its lifespan built the services).
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:  # noqa: S310
                ui_ok = resp.read().decode().strip() == "ok"
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as resp:  # noqa: S310
                if ui_ok and resp.status == 200:
                    return LiveApp(url, s, proc, log_path)
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"the app did not become healthy in {start_s:g} s:\n" + log_path.read_text())


def stop_app(app: LiveApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        app.process.kill()
        app.process.wait(timeout=5)


@pytest.fixture
def live_app_factory(
    fresh_database: Callable[[], Settings], tmp_path: Path
) -> Iterator[Callable[..., LiveApp]]:
    started: list[LiveApp] = []

    def make(settings: Settings | None = None, extra_env: dict[str, str] | None = None) -> LiveApp:
        app = start_app(
            settings or fresh_database(), tmp_path / f"app-{len(started)}.log", extra_env
        )
        started.append(app)
        return app

    yield make
    for app in started:
        stop_app(app)


# What a migrated database holds before anyone uses it (migrations' own rows), and the
# heartbeat the running app keeps in ``run_workers`` (its runs refer to it).
_KEPT_TABLES = ("alembic_version", "model_prices", "run_workers")


class _WorkerApp:
    """The test worker's one running app, started at first use (and again if it exited)."""

    def __init__(self, fresh_database: Callable[[], Settings], folder: Path) -> None:
        self._fresh_database = fresh_database
        self._folder = folder
        self._app: LiveApp | None = None
        self._seeded_prices = 0
        self._started = 0

    def emptied(self) -> LiveApp:
        """The app, with every row a test could have written removed: as a new database."""
        if self._app is None or self._app.process.poll() is not None:
            self._started += 1
            settings = self._fresh_database()
            self._app = start_app(settings, self._folder / f"app-{self._started}.log")
            with psycopg.connect(_owner_url(settings)) as conn:
                self._seeded_prices = conn.execute("SELECT max(id) FROM model_prices").fetchone()[0]
            return self._app
        with psycopg.connect(_owner_url(self._app.settings), autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")
            tables = [
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                if r[0] not in _KEPT_TABLES
            ]
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(map(sql.Identifier, tables))
                )
            )
            conn.execute("DELETE FROM model_prices WHERE id > %s", (self._seeded_prices,))
        return self._app

    def stop(self) -> None:
        if self._app is not None:
            stop_app(self._app)


def _owner_url(settings: Settings) -> str:
    assert settings.database_url is not None
    return plain_url(settings.database_url)


@pytest.fixture(scope="session")
def worker_app(
    fresh_database: Callable[[], Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_WorkerApp]:
    holder = _WorkerApp(fresh_database, tmp_path_factory.mktemp("worker-app"))
    yield holder
    holder.stop()


@pytest.fixture
def live(worker_app: _WorkerApp) -> LiveApp:
    """The running app (URL, settings, log) on an empty migrated database. One app process
    serves a test worker's tests (its start is ~7 s of imports): each test finds its database
    emptied of every row the tests before it wrote. A module whose tests need a process of
    their own (in-process caches of what an admin registered) overrides ``live`` with
    ``own_live``."""
    return worker_app.emptied()


@pytest.fixture
def own_live(live_app_factory: Callable[..., LiveApp]) -> LiveApp:
    """A new app process on a new database, for this test alone."""
    return live_app_factory()


@pytest.fixture(scope="module")
def shared_live(
    fresh_database: Callable[[], Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApp]:
    """One running app for a whole module (7-10 s saved a test): for a module whose tests
    share its people, each test in a new browser context, and leave nothing another relies on
    (a module overrides ``live`` with it)."""
    app = start_app(fresh_database(), tmp_path_factory.mktemp("app") / "app.log")
    yield app
    stop_app(app)


@pytest.fixture(scope="module")
def shared_services(shared_live: LiveApp, fast_hasher: PasswordHasher) -> Iterator[Services]:
    """Services on the shared app's database, for module-wide data."""
    services = build_services(shared_live.settings, hasher=fast_hasher, background=False)
    yield services
    services.engine.dispose()


@pytest.fixture
def live_app(live: LiveApp) -> str:
    """Base URL of the running app."""
    return live.url


@pytest.fixture
def live_settings(live: LiveApp) -> Settings:
    return live.settings


@pytest.fixture
def live_services(live: LiveApp, fast_hasher: PasswordHasher) -> Iterator[Services]:
    """Services on the running app's database (its own connection pool, closed after)."""
    services = build_services(live.settings, hasher=fast_hasher, background=False)
    yield services
    services.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `apt-get install -y chromium` (.ci/run does)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    pg = context.new_page()
    yield pg
    context.close()


# -- helpers shared by browser tests -------------------------------------------------------------


def wait_for_app(page: Any) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


def wait_for_empty_field(page: Any, label: str) -> None:
    """Wait until the page shows one field labelled ``label`` and it is empty: a field renewed
    after a submit (a secret's value) replaces the old one when the run that follows ends."""
    page.wait_for_function(
        "(label) => { const f = [...document.querySelectorAll('input')]"
        ".filter(i => i.getAttribute('aria-label') === label);"
        " return f.length === 1 && f[0].value === ''; }",
        arg=label,
        timeout=15_000,
    )


def open_tab(page: Any, name: str) -> None:
    """Click a tab whose selection the page keeps (``on_change="rerun"``) and wait for the
    rerun it starts: a file set or an option typed meanwhile could land in the old run."""
    tab = page.get_by_role("tab", name=name)
    tab.click()
    page.wait_for_function(
        "(name) => [...document.querySelectorAll('[role=tab]')].some("
        "t => t.innerText.trim() === name && t.getAttribute('aria-selected') === 'true')",
        arg=name,
    )
    page.wait_for_timeout(300)  # the rerun's request leaves after the click's handler
    wait_for_app(page)


def fill(page: Any, label: str, value: str) -> None:
    page.get_by_label(label, exact=True).fill(value)
    page.get_by_label(label, exact=True).press("Tab")


def sign_in(page: Any, url: str, email: str, password: str = factories.PASSWORD) -> None:
    """Open the app at ``url``, sign in with the login form, wait for the home page."""
    page.goto(url)
    wait_for_app(page)
    fill(page, "Email", email)
    fill(page, "Password", password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Welcome,").wait_for()


def ask(page: Any, question: str) -> None:
    """Send ``question`` from the chat box and wait until the chat shows it. A rerun landing
    as the box is typed into (a click's, on a loaded machine) redraws the box and drops what
    was typed: it is typed again, only while the question is not on the page."""
    box = page.get_by_placeholder("Ask Jarvis…")
    sent = page.get_by_test_id("stChatMessage").filter(has_text=question)
    for attempt in range(3):
        wait_for_app(page)
        if sent.count() == 0 and box.count() > 0 and box.is_enabled():
            box.fill(question)
            box.press("Enter")
        try:
            sent.first.wait_for(timeout=15_000)
            return
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise


def go_to(page: Any, title: str) -> None:
    """Open a page from the sidebar menu (the home page links to some pages too)."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
