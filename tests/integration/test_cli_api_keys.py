"""`jarvis api-keys create|list|revoke`: a key made for a person works once, is listed without
itself, and stops working when revoked; mistakes are one line and a non-zero exit."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from jarvis.bootstrap import Services, build_services
from jarvis.cli import main
from jarvis.config import Settings, get_settings
from jarvis.errors import TokenError
from jarvis.security.passwords import PasswordHasher
from tests import factories
from tests.conftest import app_environment

EMAIL = "keys-cli@example.com"


@pytest.fixture
def cli_services(
    fresh_database: Callable[[], Settings],
    fast_hasher: PasswordHasher,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Services]:
    s = fresh_database()
    services = build_services(s, hasher=fast_hasher, background=False)
    for var, value in app_environment(s, LOG_LEVEL="WARNING").items():
        monkeypatch.setenv(var, value)
    get_settings.cache_clear()
    try:
        yield services
    finally:
        get_settings.cache_clear()
        services.engine.dispose()


def test_create_list_revoke(cli_services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    who = factories.user(cli_services.uow, "keys", email=EMAIL)

    assert main(["api-keys", "create", "Keys-CLI@example.com", "--name", "laptop"]) == 0
    out = capsys.readouterr()
    secret = out.out.strip()
    assert secret.startswith("jrv_") and "\n" not in secret  # the key alone on stdout
    assert "shown only this once" in out.err and "does not expire" in out.err
    assert cli_services.api_keys.authenticate(secret).user_id == who.user_id

    assert main(["api-keys", "create", EMAIL, "--name", "ci", "--expires-days", "30"]) == 0
    assert "expires 20" in capsys.readouterr().err

    assert main(["api-keys", "list", EMAIL]) == 0
    listed = capsys.readouterr().out
    assert secret not in listed
    rows = [line.split("\t") for line in listed.strip().splitlines()[1:]]
    assert sorted(r[1] for r in rows) == ["ci", "laptop"]
    laptop = next(r for r in rows if r[1] == "laptop")
    assert secret.startswith(laptop[2]) and laptop[-1] == "active"

    assert main(["api-keys", "revoke", EMAIL, laptop[0]]) == 0
    assert "Revoked" in capsys.readouterr().out
    with pytest.raises(TokenError):
        cli_services.api_keys.authenticate(secret)
    assert main(["api-keys", "list", EMAIL]) == 0
    assert "\trevoked" in capsys.readouterr().out


def test_mistakes_are_one_line(cli_services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    factories.user(cli_services.uow, "keys", email=EMAIL)
    assert main(["api-keys", "create", "nobody@example.com", "--name", "x"]) == 1
    assert "No account" in capsys.readouterr().err
    assert main(["api-keys", "create", EMAIL, "--name", "x", "--expires-days", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Expiry" in err
    assert main(["api-keys", "revoke", EMAIL, "00000000-0000-0000-0000-000000000000"]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["api-keys", "revoke", EMAIL, "not-a-uuid"])
    assert "key id" in capsys.readouterr().err
