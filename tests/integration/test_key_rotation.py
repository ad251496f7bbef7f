"""Master-key rotation on its own fresh database: reads keep working during the rotation, a
wrong old key changes nothing, old versions can be retired; and the `jarvis secrets` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, text

from jarvis.bootstrap import Services, build_services
from jarvis.config import Settings
from jarvis.db.engine import create_owner_engine
from jarvis.errors import CryptoError, ValidationError
from jarvis.identity import Principal
from jarvis.security.crypto import EnvelopeCipher, KeyRing
from jarvis.security.passwords import PasswordHasher
from jarvis.services.key_rotation import KeyRotation, parse_master_key
from tests import factories
from tests.conftest import TEST_MASTER_KEY, app_environment

K1 = bytes.fromhex(TEST_MASTER_KEY)
K2 = bytes.fromhex("22" * 32)
WRONG = bytes.fromhex("33" * 32)


@dataclass
class Vault:
    settings: Settings
    owner: Engine
    users: list[Principal]
    values: dict[tuple[uuid.UUID, str], str]
    make: Callable[[KeyRing], Services]

    def rows(self) -> list[tuple[object, ...]]:
        with self.owner.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text(
                        "select id, ciphertext, nonce, wrapped_dek, key_version, updated_at "
                        "from user_secrets order by id"
                    )
                )
            ]

    def versions(self) -> dict[int, int]:
        with self.owner.connect() as conn:
            return dict(
                conn.execute(  # type: ignore[arg-type]
                    text("select key_version, count(*) from user_secrets group by 1")
                ).all()
            )

    def read_all(self, services: Services) -> None:
        for user in self.users:
            for provider in ("openai", "tavily"):
                assert (
                    services.secrets.reveal(user, provider).value
                    == self.values[(user.user_id, provider)]
                )


@pytest.fixture
def vault(fresh_database: Callable[[], Settings], fast_hasher: PasswordHasher) -> Iterator[Vault]:
    """A fresh database with three users holding two secrets each, sealed under K1 (v1)."""
    settings = fresh_database()
    owner = create_owner_engine(settings)
    built: list[Services] = []

    def make(ring: KeyRing) -> Services:
        services = build_services(
            settings, hasher=fast_hasher, cipher=EnvelopeCipher(ring), background=False
        )
        built.append(services)
        return services

    old = make(KeyRing(1, {1: K1}))
    users = [factories.user(old.uow, f"rot{i}") for i in range(3)]
    values: dict[tuple[uuid.UUID, str], str] = {}
    for user in users:
        values[(user.user_id, "openai")] = "sk-" + uuid.uuid4().hex
        values[(user.user_id, "tavily")] = "tvly-" + uuid.uuid4().hex
        for provider in ("openai", "tavily"):
            old.secrets.create(user, provider, None, values[(user.user_id, provider)])
    yield Vault(settings, owner, users, values, make)
    for services in built:
        services.engine.dispose()
    owner.dispose()


def test_rotation_end_to_end_with_reads_in_between(vault: Vault) -> None:
    operator = vault.make(KeyRing(1, {1: K1}))  # the CLI's view: current key v1
    app = vault.make(KeyRing(1, {1: K1, 2: K2}))  # a running app told about v2 beforehand
    rotation = KeyRotation(operator.uow, operator.secrets.cipher.keyring)
    with pytest.raises(ValidationError, match="6 secret.s. still use master key version 1"):
        KeyRotation(app.uow, KeyRing(2, {1: K1, 2: K2})).retire(1)

    seen_mixed = []

    def between_users(user_id: uuid.UUID) -> None:
        vault.read_all(app)  # reads keep working in the middle of the rotation
        seen_mixed.append(sorted(vault.versions()))

    report = rotation.rotate(K2, on_user_done=between_users)

    assert (report.new_version, report.users, report.rotated) == (2, 3, 6)
    assert seen_mixed[0] == [1, 2] and seen_mixed[-1] == [2]
    assert vault.versions() == {2: 6}
    assert rotation.key_versions_in_use() == {2: 6}

    new_only = vault.make(KeyRing(2, {2: K2}))  # after the switch, v1 retired
    vault.read_all(new_only)
    with pytest.raises(CryptoError):
        operator.secrets.reveal(vault.users[0], "openai")  # v1 alone can no longer read

    # One audit event per user records the new version.
    with vault.owner.connect() as conn:
        details = conn.scalars(
            text("select details::text from audit_events where action = 'secret.key_rotated'")
        ).all()
    assert len(details) == 3 and all('"to_version": 2' in d for d in details)

    # Running it again changes nothing; v1 can now be retired, the current version cannot.
    before = vault.rows()
    again = KeyRotation(new_only.uow, KeyRing(2, {2: K2})).rotate(K2)
    assert (again.rotated, again.already_current) == (0, 6)
    assert vault.rows() == before
    KeyRotation(new_only.uow, KeyRing(2, {1: K1, 2: K2})).retire(1)
    with pytest.raises(ValidationError, match="current master key"):
        KeyRotation(new_only.uow, KeyRing(2, {2: K2})).retire(2)

    # New secrets after the switch join the user's (same) data key under v2.
    user = vault.users[0]
    created = new_only.secrets.create(user, "custom", "later", "custom-value-123456")
    assert created.key_version == 2
    assert new_only.secrets.reveal(user, "custom").value == "custom-value-123456"


def test_a_wrong_old_key_aborts_with_nothing_changed(vault: Vault) -> None:
    before = vault.rows()
    wrong = vault.make(KeyRing(1, {1: WRONG}))
    with pytest.raises(CryptoError, match="Nothing was changed"):
        KeyRotation(wrong.uow, wrong.secrets.cipher.keyring).rotate(K2)
    assert vault.rows() == before
    vault.read_all(vault.make(KeyRing(1, {1: K1})))


def test_one_unreadable_row_stops_the_rotation_before_any_user_changes(vault: Vault) -> None:
    last = vault.users[-1]
    with vault.owner.begin() as conn:
        conn.execute(
            text(
                "update user_secrets set ciphertext = ciphertext || '\\x00'::bytea "
                "where user_id = :u and provider = 'tavily'"
            ),
            {"u": last.user_id},
        )
    before = vault.rows()
    operator = vault.make(KeyRing(1, {1: K1}))
    with pytest.raises(CryptoError, match="1 secret"):
        KeyRotation(operator.uow, operator.secrets.cipher.keyring).rotate(K2)
    assert vault.rows() == before


def test_target_version_rules(vault: Vault) -> None:
    operator = vault.make(KeyRing(1, {1: K1}))
    rotation = KeyRotation(operator.uow, KeyRing(1, {1: K1}))
    assert rotation.target_version(K2) == 2
    assert rotation.target_version(K2, 7) == 7
    assert rotation.target_version(K1) == 1  # the key it already is
    with pytest.raises(ValidationError, match="another master key"):
        rotation.target_version(K2, 1)
    with pytest.raises(ValidationError, match="64 hexadecimal"):
        parse_master_key("abcd")
    assert parse_master_key(" " + K2.hex() + "\n") == K2


# -- the command line ----------------------------------------------------------------------------


def _cli(
    settings: Settings, *args: str, stdin: str = "", **env_extra: str
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("JARVIS_NEW_MASTER_KEY", None)
    env.update(app_environment(settings, LOG_LEVEL="WARNING"))
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "jarvis.cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # `jarvis` subprocesses
def test_cli_rotates_from_stdin_and_retires(vault: Vault) -> None:
    status = _cli(vault.settings, "secrets", "key-status")
    assert status.returncode == 0, status.stderr
    assert "master key version 1\t6 secret(s)" in status.stdout

    rotated = _cli(vault.settings, "secrets", "rotate-master-key", stdin=K2.hex() + "\n")
    assert rotated.returncode == 0, rotated.stderr
    assert "Re-wrapped 6 secret(s) of 3 user(s) under master key version 2" in rotated.stdout
    assert K2.hex() not in rotated.stdout + rotated.stderr and K1.hex() not in rotated.stdout
    assert vault.versions() == {2: 6}

    # With the new configuration the old version is retired.
    new_env = {
        "JARVIS_MASTER_KEY": K2.hex(),
        "JARVIS_MASTER_KEY_VERSION": "2",
        "JARVIS_OLD_MASTER_KEYS": f"1:{K1.hex()}",
    }
    retired = _cli(vault.settings, "secrets", "retire-master-key", "1", **new_env)
    assert retired.returncode == 0, retired.stderr
    assert "remove it from JARVIS_OLD_MASTER_KEYS" in retired.stdout
    vault.read_all(vault.make(KeyRing(2, {2: K2})))


@pytest.mark.slow  # `jarvis` subprocesses
def test_cli_wrong_old_key_and_bad_new_key_change_nothing(vault: Vault) -> None:
    before = vault.rows()
    wrong = _cli(
        vault.settings,
        "secrets",
        "rotate-master-key",
        JARVIS_MASTER_KEY=WRONG.hex(),
        JARVIS_NEW_MASTER_KEY=K2.hex(),
    )
    assert wrong.returncode == 1
    assert "Nothing was changed" in wrong.stderr and "Traceback" not in wrong.stderr
    bad = _cli(vault.settings, "secrets", "rotate-master-key", stdin="not-a-key\n")
    assert bad.returncode == 1 and "64 hexadecimal" in bad.stderr
    assert vault.rows() == before
