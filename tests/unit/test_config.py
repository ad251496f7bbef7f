"""Settings: clear errors naming the variable; dev keys generated once; production refuses."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from jarvis.config import load_settings, normalise_database_url
from jarvis.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in (
        "DATABASE_URL",
        "JARVIS_MASTER_KEY",
        "JARVIS_JWT_SECRET",
        "JARVIS_DB_APP_PASSWORD",
        "JARVIS_ENV",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("JARVIS_MASTER_KEY", "not-hex", "JARVIS_MASTER_KEY: expected 64 hexadecimal characters"),
        ("JARVIS_MASTER_KEY", "ab" * 16, "JARVIS_MASTER_KEY: expected 64 hexadecimal characters"),
        ("JARVIS_JWT_SECRET", "short", "JARVIS_JWT_SECRET: expected at least 32 bytes"),
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL: expected a PostgreSQL URL"),
        ("JARVIS_PORT", "eighty", "JARVIS_PORT"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, var: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=expected):
        load_settings(data_dir=tmp_path)


def test_error_message_never_echoes_the_bad_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JARVIS_JWT_SECRET", "my-short-secret")
    with pytest.raises(ConfigError) as info:
        load_settings(data_dir=tmp_path)
    assert "my-short-secret" not in str(info.value)


def test_dev_mode_generates_keys_once_and_keeps_them_private(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path)
    second = load_settings(data_dir=tmp_path)
    assert first.master_key and len(bytes.fromhex(first.master_key)) == 32
    assert first.jwt_secret and len(first.jwt_secret) >= 32
    assert (first.master_key, first.jwt_secret) == (second.master_key, second.jwt_secret)
    mode = stat.S_IMODE((tmp_path / "keys.json").stat().st_mode)
    assert mode == 0o600


def test_production_refuses_missing_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JARVIS_ENV", "production")
    with pytest.raises(ConfigError, match="JARVIS_MASTER_KEY.*JARVIS_JWT_SECRET"):
        load_settings(data_dir=tmp_path)
    assert not (tmp_path / "keys.json").exists()


def test_database_urls_are_normalised_to_psycopg3() -> None:
    assert normalise_database_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"


def test_app_url_uses_the_app_role_not_the_owner(tmp_path: Path) -> None:
    s = load_settings(
        data_dir=tmp_path,
        database_url="postgresql://owner:secret@db:5432/jarvis",
        db_app_password="pw",
    )
    assert s.app_url() == "postgresql+psycopg://jarvis_app:pw@db:5432/jarvis"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("10.0.0.1", ["10.0.0.1"]),
        (" 10.0.0.1 , 127.0.0.1,10.1.0.0/16 ", ["10.0.0.1", "127.0.0.1", "10.1.0.0/16"]),
        ("::1", ["::1"]),
    ],
)
def test_trusted_proxies_are_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, expected: list[str]
) -> None:
    # The documented form (and the empty line in .env.example) must load, not crash.
    monkeypatch.setenv("JARVIS_TRUSTED_PROXIES", value)
    assert load_settings(data_dir=tmp_path).trusted_proxies == expected


def test_env_example_copied_to_dot_env_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    for line in example.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            monkeypatch.delenv(line.split("=", 1)[0], raising=False)
    settings = load_settings(data_dir=tmp_path)
    assert settings.trusted_proxies == []


def test_a_bad_trusted_proxy_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JARVIS_TRUSTED_PROXIES", "10.0.0.1,proxy.example.com")
    with pytest.raises(ConfigError, match="JARVIS_TRUSTED_PROXIES: .*proxy.example.com"):
        load_settings(data_dir=tmp_path)


GOOD_KEYS = {
    "JARVIS_MASTER_KEY": "3f9c1a7be2d04c6e8a15f2b7c9d3e0a4" + "b6c8d2e4f1a3c5e7092b4d6f8a1c3e5d",
    "JARVIS_JWT_SECRET": "q8Zt0vR3xK1mW9pL2sB7nH4cF6gJ5dY0aE3uT8iO1kM=",
    "JARVIS_DB_APP_PASSWORD": "vN7#kQ2!pX9zL4mR",
}


@pytest.mark.parametrize(
    ("var", "weak", "why"),
    [
        ("JARVIS_JWT_SECRET", "a" * 32, "repeated pattern"),
        ("JARVIS_JWT_SECRET", "abcd" * 16, "repeated pattern"),
        ("JARVIS_JWT_SECRET", "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb", "low entropy"),
        ("JARVIS_JWT_SECRET", "change-me-to-a-long-random-string-please", "placeholder"),
        ("JARVIS_MASTER_KEY", "00" * 32, "repeated byte pattern"),
        ("JARVIS_MASTER_KEY", "11" * 32, "repeated byte pattern"),
        ("JARVIS_MASTER_KEY", bytes(range(32)).hex(), "counting sequence"),
        ("JARVIS_DB_APP_PASSWORD", "password", "well-known"),
        ("JARVIS_DB_APP_PASSWORD", "jarvis", "well-known"),
        ("JARVIS_DB_APP_PASSWORD", "Summer2026", "shorter than 12"),
    ],
)
def test_production_refuses_weak_keys_and_says_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, var: str, weak: str, why: str
) -> None:
    monkeypatch.setenv("JARVIS_ENV", "production")
    for name, value in GOOD_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(var, weak)
    with pytest.raises(ConfigError, match=f"{var} is .*{why}.*generate one with: openssl") as info:
        load_settings(data_dir=tmp_path)
    assert weak not in str(info.value)


def test_production_accepts_generated_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import secrets

    monkeypatch.setenv("JARVIS_ENV", "production")
    for name, value in GOOD_KEYS.items():
        monkeypatch.setenv(name, value)
    assert load_settings(data_dir=tmp_path).env == "production"
    for _ in range(200):  # what the README tells people to run never trips the check
        monkeypatch.setenv("JARVIS_MASTER_KEY", secrets.token_hex(32))
        monkeypatch.setenv("JARVIS_JWT_SECRET", secrets.token_urlsafe(32))
        monkeypatch.setenv("JARVIS_DB_APP_PASSWORD", secrets.token_urlsafe(12))
        load_settings(data_dir=tmp_path)


def test_weak_keys_are_fine_outside_production(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path, master_key="00" * 32, jwt_secret="a" * 32)
    assert s.master_key == "00" * 32


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("JARVIS_ACCESS_TOKEN_TTL", "1" + "0" * 30),
        ("JARVIS_REFRESH_IDLE_TTL", "99999999999999"),
        ("JARVIS_REFRESH_ABSOLUTE_TTL", "-5"),
        ("JARVIS_MASTER_KEY_VERSION", str(2**31)),
        ("JARVIS_MAX_RUN_COST_USD", "nan"),
        ("JARVIS_MAX_RUN_COST_USD", "inf"),
        ("JARVIS_DEFAULT_MONTHLY_BUDGET_USD", "1e308"),
        ("JARVIS_MAX_CONCURRENT_RUNS", "-1"),
        ("JARVIS_DB_POOL_SIZE", "100000"),
    ],
)
def test_numbers_out_of_range_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings(data_dir=tmp_path)


def test_a_dot_env_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(
        b"JARVIS_JWT_SECRET=caf\xe9-\xff\xfe-secret-secret-secret-secret\n"
    )
    with pytest.raises(ConfigError, match=r"\.env file is not UTF-8"):
        load_settings(data_dir=tmp_path)


def test_a_nul_in_a_setting_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JARVIS_JWT_SECRET=" + "s" * 20 + "\x00" + "t" * 20 + "\n")
    with pytest.raises(ConfigError, match="JARVIS_JWT_SECRET contains a NUL"):
        load_settings(data_dir=tmp_path)
