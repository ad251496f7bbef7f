"""PostgreSQL goes away and comes back: a real stop and start of an embedded server.

While it is down, services, pages and commands answer "the database is unavailable, try
again" from the error tree (no driver error, no socket path); when it is back the same
services (the same connection pool) work again by themselves, and nothing committed is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from jarvis.bootstrap import Services, build_services
from jarvis.cli import main
from jarvis.config import Settings, get_settings
from jarvis.db.embedded import EmbeddedPostgres
from jarvis.db.migrate import upgrade
from jarvis.errors import DatabaseUnavailableError
from jarvis.security.passwords import PasswordHasher
from jarvis.services.usage.views import UsageQuery
from tests.conftest import make_settings
from tests.factories import PW
from tests.ui.conftest import ROOT, point_app_at

UNAVAILABLE = "The database is unavailable right now. Try again in a moment."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedPostgres, Settings]]:
    root = Path(tmp_path_factory.mktemp("outage"))
    pg = EmbeddedPostgres(root)  # its data stays across stop / start
    settings = make_settings(pg.start(), root / "data")
    upgrade(settings)
    yield pg, settings
    pg.stop()


def _wait_until_back(call: Callable[[], object], timeout: float = 30.0) -> float:
    """Seconds until ``call`` succeeds again (it raises DatabaseUnavailableError meanwhile)."""
    started = time.monotonic()
    while True:
        try:
            call()
        except DatabaseUnavailableError:
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.05)
        else:
            return time.monotonic() - started


def _assert_unavailable(call: Callable[[], object], socket_dir: str) -> None:
    with pytest.raises(DatabaseUnavailableError) as info:
        call()
    assert str(info.value) == UNAVAILABLE
    assert socket_dir not in str(info.value)


def test_services_say_unavailable_then_recover_by_themselves_losing_nothing(
    server: tuple[EmbeddedPostgres, Settings], fast_hasher: PasswordHasher
) -> None:
    pg, settings = server
    services: Services = build_services(settings, hasher=fast_hasher, recover_runs=False)
    try:
        admin = services.accounts.register("outage-admin@example.com", PW)
        kept = services.memory.store(admin, "The spare key is under the blue flower pot")
        services.conversations.create(admin, provider="offline", model="offline", title="Before")
        services.knowledge_graph.add_fact(admin, "Ada", "works_at", "Acme")

        pg.stop()
        try:
            socket_dir = str(pg.pgdata)
            for call in (
                lambda: services.memory.store(admin, "written while down"),
                lambda: services.memory.search(admin, "spare key"),
                lambda: services.accounts.has_users(),
                lambda: services.sign_in.login("outage-admin@example.com", PW, ip="203.0.113.9"),
                lambda: services.conversations.list(admin),
                lambda: services.knowledge_graph.search_entities(admin, "Ada"),
                lambda: services.usage.dashboard(
                    admin, UsageQuery(start=date.today() - timedelta(days=7), end=date.today())
                ),
                lambda: services.runs.recover_stale_runs(),
            ):
                _assert_unavailable(call, socket_dir)
            status = services.health.database_status()
            assert not status.ok and status.error == UNAVAILABLE
            assert services.runs.recover_stale_runs_safely() == 0  # logged, never fatal
        finally:
            pg.start()

        seconds = _wait_until_back(lambda: services.accounts.has_users())
        print(f"\nthe pool served again {seconds:.2f} s after the server was back")
        assert seconds < 10
        [hit] = services.memory.search(admin, "spare key", k=1)
        assert hit.id == kept.id  # committed before the outage, still there
        assert [c.title for c in services.conversations.list(admin)] == ["Before"]
        assert [m.content for m in services.memory.browse(admin)] == [kept.content]
        assert services.sign_in.login("outage-admin@example.com", PW).principal == admin
        assert services.health.database_status().ok
    finally:
        services.shutdown()  # its listener, job worker and run supervisor (else they outlive it)
        services.engine.dispose()


def test_commands_say_unavailable(
    server: tuple[EmbeddedPostgres, Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pg, settings = server
    point_app_at(monkeypatch, settings)
    pg.stop()
    try:
        for argv in (["users", "list"], ["db", "upgrade"], ["db", "purge"]):
            assert main(argv) == 1, argv
            err = capsys.readouterr().err
            assert err.strip().splitlines()[-1] == f"jarvis: {UNAVAILABLE}", argv
            assert str(pg.pgdata) not in err
    finally:
        pg.start()
        get_settings.cache_clear()
    assert main(["users", "list"]) == 0


def test_pages_say_unavailable_then_work_again(
    server: tuple[EmbeddedPostgres, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg, settings = server
    point_app_at(monkeypatch, settings)
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
        at.run()
        assert not at.exception
        assert at.text_input(key="login_email")  # the sign-in form: an admin exists already

        pg.stop()
        try:
            for _ in range(2):  # the sign-in page itself, and a rerun of it
                at.run()
                assert not at.exception
                assert [e.value for e in at.error] == [UNAVAILABLE]
        finally:
            pg.start()

        deadline = time.monotonic() + 10
        while True:
            at.run()
            if not at.error or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not at.exception and not at.error
        assert at.text_input(key="login_email")
    finally:
        get_settings.cache_clear()
        st.cache_resource.clear()
