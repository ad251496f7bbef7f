"""Typed settings, read once from the environment and `.env`.

In development (``JARVIS_ENV=dev``, the default) missing keys are generated once and kept in
the data folder, so ``make run`` works on a fresh machine. In production missing or weak keys
refuse to start, with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets as _secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from jarvis.errors import ConfigError
from jarvis.key_strength import key_weakness, secret_weakness

KEYS_FILE = "keys.json"
MIN_JWT_SECRET_BYTES = 32
#: Session lifetimes are bounded (ten years): beyond, date arithmetic overflows.
MAX_SESSION_SECONDS = 10 * 365 * 86400
_HOST_NAME_RE = re.compile(
    r"(?i)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?"
)


def _env(name: str) -> Any:
    return Field(validation_alias=AliasChoices(name, name.lower()))


def normalise_database_url(url: str) -> str:
    """Return ``url`` with the ``postgresql+psycopg`` driver (psycopg 3)."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def parse_master_keys(value: str) -> dict[int, bytes]:
    """Parse ``"1:hex,2:hex"`` (version:64 hex characters, comma separated)."""
    keys: dict[int, bytes] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        version, sep, hexkey = item.strip().partition(":")
        try:
            number = int(version)
            raw = bytes.fromhex(hexkey)
        except ValueError:
            number, raw = 0, b""
        if not sep or number < 1 or len(raw) != 32:
            raise ValueError(
                "expected version:key pairs like 1:<64 hex characters>,2:<64 hex characters>"
            )
        if number in keys:
            raise ValueError(f"master key version {number} is listed twice")
        keys[number] = raw
    return keys


class Settings(BaseSettings):
    """Every setting Jarvis reads; each field documents its environment variable."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    env: Literal["dev", "test", "production"] = Field(
        "dev", validation_alias=AliasChoices("JARVIS_ENV", "env")
    )
    data_dir: Path = Field(
        Path(platformdirs.user_data_dir("jarvis")),
        validation_alias=AliasChoices("JARVIS_DATA_DIR", "data_dir"),
    )
    # Owner connection (migrations, CLI). Unset: the embedded PostgreSQL in the data folder.
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    # Connection used by the running app; default: DATABASE_URL with the app role's credentials.
    # Set by `jarvis up` / build_services when the database is the embedded server.
    embedded_database: bool = Field(
        False, validation_alias=AliasChoices("JARVIS_EMBEDDED_DATABASE", "embedded_database")
    )
    app_database_url: str | None = Field(
        None, validation_alias=AliasChoices("JARVIS_APP_DATABASE_URL", "app_database_url")
    )
    db_app_role: str = Field(
        "jarvis_app", validation_alias=AliasChoices("JARVIS_DB_APP_ROLE", "db_app_role")
    )
    db_app_password: str | None = Field(
        None, validation_alias=AliasChoices("JARVIS_DB_APP_PASSWORD", "db_app_password")
    )
    db_pool_size: int = Field(
        5, validation_alias=AliasChoices("JARVIS_DB_POOL_SIZE", "db_pool_size"), ge=1, le=100
    )

    master_key: str | None = Field(
        None, validation_alias=AliasChoices("JARVIS_MASTER_KEY", "master_key")
    )
    master_key_version: int = Field(
        1,
        validation_alias=AliasChoices("JARVIS_MASTER_KEY_VERSION", "master_key_version"),
        ge=1,
        le=2**31 - 1,
    )
    # Other master key versions still readable ("1:hex,2:hex"): previous keys until retired
    # (see `jarvis secrets rotate-master-key`). Never used to write.
    old_master_keys: str | None = Field(
        None, validation_alias=AliasChoices("JARVIS_OLD_MASTER_KEYS", "old_master_keys")
    )
    jwt_secret: str | None = Field(
        None, validation_alias=AliasChoices("JARVIS_JWT_SECRET", "jwt_secret")
    )
    jwt_algorithm: Literal["HS256"] = Field(
        "HS256", validation_alias=AliasChoices("JARVIS_JWT_ALGORITHM", "jwt_algorithm")
    )
    jwt_issuer: str = Field(
        "jarvis", validation_alias=AliasChoices("JARVIS_JWT_ISSUER", "jwt_issuer")
    )
    jwt_audience: str = Field(
        "jarvis-app", validation_alias=AliasChoices("JARVIS_JWT_AUDIENCE", "jwt_audience")
    )
    access_token_ttl_seconds: int = Field(
        900,
        validation_alias=AliasChoices("JARVIS_ACCESS_TOKEN_TTL", "access_token_ttl_seconds"),
        ge=30,
        le=86400,
    )
    refresh_idle_ttl_seconds: int = Field(
        7 * 86400,
        validation_alias=AliasChoices("JARVIS_REFRESH_IDLE_TTL", "refresh_idle_ttl_seconds"),
        ge=60,
        le=MAX_SESSION_SECONDS,
    )
    refresh_absolute_ttl_seconds: int = Field(
        30 * 86400,
        validation_alias=AliasChoices(
            "JARVIS_REFRESH_ABSOLUTE_TTL", "refresh_absolute_ttl_seconds"
        ),
        ge=60,
        le=MAX_SESSION_SECONDS,
    )
    # NoDecode: a comma-separated list ("10.0.0.1,10.1.0.0/16"), not JSON.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("JARVIS_TRUSTED_PROXIES", "trusted_proxies"),
    )
    # Hosts / IPs / networks users' base URLs may reach although not public (the SSRF guard,
    # jarvis.security.outbound): "localhost,127.0.0.1,10.0.0.0/8" for a local Ollama / vLLM.
    outbound_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("JARVIS_OUTBOUND_ALLOWLIST", "outbound_allowlist"),
    )
    # MCP servers (admin-registered tools): how often a process re-reads the registered
    # servers' tools from the database, and after how long an admin's view re-discovers them.
    mcp_catalog_seconds: float = Field(
        5.0,
        validation_alias=AliasChoices("JARVIS_MCP_CATALOG_SECONDS", "mcp_catalog_seconds"),
        ge=0,
        le=3600,
    )
    mcp_stale_seconds: int = Field(
        86400,
        validation_alias=AliasChoices("JARVIS_MCP_STALE_SECONDS", "mcp_stale_seconds"),
        ge=60,
        le=30 * 86400,
    )

    # HTTP API (/api/v1, /v1): request limits and browser origins allowed to call it.
    api_requests_per_minute: int = Field(
        600,
        validation_alias=AliasChoices("JARVIS_API_REQUESTS_PER_MINUTE", "api_requests_per_minute"),
        ge=1,
        le=1_000_000,
    )
    api_requests_per_minute_per_ip: int = Field(
        1200,
        validation_alias=AliasChoices(
            "JARVIS_API_REQUESTS_PER_MINUTE_PER_IP", "api_requests_per_minute_per_ip"
        ),
        ge=1,
        le=1_000_000,
    )
    api_max_body_bytes: int = Field(
        1_048_576,
        validation_alias=AliasChoices("JARVIS_API_MAX_BODY_BYTES", "api_max_body_bytes"),
        ge=1024,
        le=104_857_600,
    )
    # NoDecode: a comma-separated list of origins ("https://app.example.com"); empty = closed.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("JARVIS_CORS_ORIGINS", "cors_origins"),
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=AliasChoices("LOG_LEVEL", "log_level")
    )
    log_format: Literal["json", "text"] = Field(
        "json", validation_alias=AliasChoices("JARVIS_LOG_FORMAT", "log_format")
    )
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        "none", validation_alias=AliasChoices("JARVIS_OTEL_EXPORTER", "otel_exporter")
    )

    # The instance's embedding model for users who did not choose one (offline: no key).
    embedder: Literal["wordllama", "lexical", "local"] = Field(
        "wordllama", validation_alias=AliasChoices("JARVIS_EMBEDDER", "embedder")
    )

    # Large knowledge graphs held in memory per app process for capped neighbourhoods
    # (jarvis/services/knowledge_graph/in_memory.py): ~100 MB per 500k relations.
    graph_memory_relations: int = Field(
        1_000_000,
        validation_alias=AliasChoices("JARVIS_GRAPH_MEMORY_RELATIONS", "graph_memory_relations"),
        ge=0,
        le=1_000_000_000,
        description="relations an app process may hold in memory across users (0: none)",
    )
    graph_memory_min_relations: int = Field(
        20_000,
        validation_alias=AliasChoices(
            "JARVIS_GRAPH_MEMORY_MIN_RELATIONS", "graph_memory_min_relations"
        ),
        ge=0,
        le=1_000_000_000,
        description="the smallest graph (in relations) worth holding in memory",
    )

    host: str = Field("127.0.0.1", validation_alias=AliasChoices("JARVIS_HOST", "host"))
    port: int = Field(8501, validation_alias=AliasChoices("JARVIS_PORT", "port"), ge=1, le=65535)

    # Guards (chat / orchestrator)
    max_concurrent_runs: int = Field(
        2,
        validation_alias=AliasChoices("JARVIS_MAX_CONCURRENT_RUNS", "max_concurrent_runs"),
        ge=1,
        le=1000,
    )
    messages_per_minute: int = Field(
        20,
        validation_alias=AliasChoices("JARVIS_MESSAGES_PER_MINUTE", "messages_per_minute"),
        ge=1,
        le=100_000,
    )
    max_steps_per_run: int = Field(
        8, validation_alias=AliasChoices("JARVIS_MAX_STEPS", "max_steps_per_run"), ge=1, le=100
    )
    max_tokens_per_run: int = Field(
        200_000,
        validation_alias=AliasChoices("JARVIS_MAX_RUN_TOKENS", "max_tokens_per_run"),
        ge=1,
        le=10**9,
    )
    max_cost_per_run_usd: float = Field(
        1.0,
        validation_alias=AliasChoices("JARVIS_MAX_RUN_COST_USD", "max_cost_per_run_usd"),
        gt=0,
        le=1_000_000,
        allow_inf_nan=False,
    )
    run_workers: int = Field(
        16,
        validation_alias=AliasChoices("JARVIS_RUN_WORKERS", "run_workers"),
        ge=1,
        le=256,
        description="threads per app process that execute chat runs",
    )
    job_worker: Literal["in-process", "off"] = Field(
        "in-process",
        validation_alias=AliasChoices("JARVIS_JOB_WORKER", "job_worker"),
        description="run a background-job worker inside each app process (off: only `jarvis worker`)",
    )
    job_concurrency: int = Field(
        2,
        validation_alias=AliasChoices("JARVIS_JOB_CONCURRENCY", "job_concurrency"),
        ge=1,
        le=64,
        description="background jobs one worker runs at once",
    )
    run_deadline_seconds: float = Field(
        300.0,
        validation_alias=AliasChoices("JARVIS_RUN_DEADLINE_SECONDS", "run_deadline_seconds"),
        gt=0,
        le=86400,
        description="a whole run (every model call, retry and tool) must end within this",
    )
    default_monthly_budget_usd: float = Field(
        20.0,
        validation_alias=AliasChoices(
            "JARVIS_DEFAULT_MONTHLY_BUDGET_USD", "default_monthly_budget_usd"
        ),
        ge=0,
        le=1_000_000,
        allow_inf_nan=False,
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        if isinstance(value, list):
            for origin in value:
                if not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?", str(origin)):
                    raise ValueError(
                        f"expected origins like https://app.example.com separated by commas, "
                        f"got {str(origin)[:80]!r}"
                    )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, list):
            for entry in value:
                try:
                    ipaddress.ip_network(str(entry).strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"expected IP addresses or networks separated by commas, got {entry!r}"
                    ) from None
        return value

    @field_validator("outbound_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [h.strip() for h in value.split(",") if h.strip()]
        if isinstance(value, list):
            for entry in value:
                text = str(entry).strip().strip("[]")
                try:
                    ipaddress.ip_network(text, strict=False)
                except ValueError:
                    if not _HOST_NAME_RE.fullmatch(text):
                        raise ValueError(
                            "expected host names, IP addresses or networks (CIDR) separated by "
                            f"commas, got {str(entry)[:80]!r}"
                        ) from None
        return value

    @field_validator("database_url", "app_database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = normalise_database_url(value)
        try:
            url = make_url(value)
        except Exception as exc:  # sqlalchemy raises ArgumentError
            raise ValueError("expected a URL like postgresql://user:password@host:5432/db") from exc
        if not url.drivername.startswith("postgresql"):
            raise ValueError("expected a PostgreSQL URL (postgresql://...)")
        return value

    @field_validator("master_key")
    @classmethod
    def _check_master_key(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            raw = bytes.fromhex(value)
        except ValueError as exc:
            raise ValueError("expected 64 hexadecimal characters (32 bytes)") from exc
        if len(raw) != 32:
            raise ValueError("expected 64 hexadecimal characters (32 bytes)")
        return value.lower()

    @field_validator("old_master_keys")
    @classmethod
    def _check_old_master_keys(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        parse_master_keys(value)
        return value.strip().lower()

    @field_validator("jwt_secret")
    @classmethod
    def _check_jwt_secret(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if len(value.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"expected at least {MIN_JWT_SECRET_BYTES} bytes")
        return value

    # -- derived values -------------------------------------------------------------------

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None or self.embedded_database

    @property
    def master_key_bytes(self) -> bytes:
        if not self.master_key:
            raise ConfigError("JARVIS_MASTER_KEY is not set: expected 64 hexadecimal characters.")
        return bytes.fromhex(self.master_key)

    @property
    def old_master_keys_bytes(self) -> dict[int, bytes]:
        """``JARVIS_OLD_MASTER_KEYS`` as ``{version: key}`` (empty when unset)."""
        return parse_master_keys(self.old_master_keys) if self.old_master_keys else {}

    def owner_url(self) -> str:
        if not self.database_url:
            raise ConfigError("DATABASE_URL is not set and the embedded database is not started.")
        return self.database_url

    def app_url(self) -> str:
        """The URL the running app uses: the unprivileged app role, never the owner."""
        if self.app_database_url:
            return self.app_database_url
        owner: URL = make_url(self.owner_url())
        return owner.set(username=self.db_app_role, password=self.db_app_password).render_as_string(
            hide_password=False
        )


def _load_or_create_keys(data_dir: Path) -> dict[str, str]:
    """Development keys, generated once and kept (mode 0600) in the data folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEYS_FILE
    keys: dict[str, str] = {}
    if path.exists():
        keys = json.loads(path.read_text())
    changed = False
    generators: tuple[tuple[str, Callable[[], str]], ...] = (
        ("master_key", lambda: _secrets.token_hex(32)),
        ("jwt_secret", lambda: _secrets.token_urlsafe(48)),
        ("db_app_password", lambda: _secrets.token_urlsafe(24)),
    )
    for name, factory in generators:
        if name not in keys:
            keys[name] = factory()
            changed = True
    if changed:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(keys, fh)
    return keys


def _variable(field: str) -> str:
    """The environment variable of a settings field (``jwt_secret`` -> ``JARVIS_JWT_SECRET``)."""
    alias = Settings.model_fields[field].validation_alias
    return str(alias.choices[0]) if isinstance(alias, AliasChoices) else field.upper()


def _describe(exc: PydanticValidationError) -> str:
    parts = []
    aliases = {name: f.validation_alias for name, f in Settings.model_fields.items()}
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        alias = aliases.get(field)
        var = field.upper()
        if isinstance(alias, AliasChoices):
            var = str(alias.choices[0])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{var}: {msg}")
    return "Invalid configuration: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; fill dev keys; raise :class:`ConfigError` on bad values."""
    try:
        settings = Settings(**overrides)
    except PydanticValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except UnicodeDecodeError:
        raise ConfigError(
            "The .env file is not UTF-8 text: save it as UTF-8 (see .env.example)."
        ) from None
    for name, value in settings.model_dump().items():
        if isinstance(value, str) and "\x00" in value:
            raise ConfigError(f"{_variable(name)} contains a NUL character.")
    missing = [
        var
        for var, value in (
            ("JARVIS_MASTER_KEY", settings.master_key),
            ("JARVIS_JWT_SECRET", settings.jwt_secret),
            ("JARVIS_DB_APP_PASSWORD", settings.db_app_password),
        )
        if not value
    ]
    if missing and settings.env == "production":
        raise ConfigError(
            "Missing required settings in production: "
            + ", ".join(missing)
            + ". Set JARVIS_MASTER_KEY to 64 hex characters (openssl rand -hex 32), "
            "JARVIS_JWT_SECRET to at least 32 random bytes, JARVIS_DB_APP_PASSWORD to a strong password."
        )
    if settings.env == "production":
        _refuse_weak_keys(settings)
    if missing:
        keys = _load_or_create_keys(settings.data_dir)
        settings = settings.model_copy(
            update={
                "master_key": settings.master_key or keys["master_key"],
                "jwt_secret": settings.jwt_secret or keys["jwt_secret"],
                "db_app_password": settings.db_app_password or keys["db_app_password"],
            }
        )
    return settings


#: How to make a good value, per variable (said when a weak one is refused).
_GENERATE = {
    "JARVIS_MASTER_KEY": "openssl rand -hex 32",
    "JARVIS_JWT_SECRET": "openssl rand -base64 48",
    "JARVIS_DB_APP_PASSWORD": "openssl rand -base64 24",
}


def _refuse_weak_keys(settings: Settings) -> None:
    """Production refuses keys that meet the length rules but are predictable."""
    problems: dict[str, str | None] = {
        "JARVIS_MASTER_KEY": key_weakness(bytes.fromhex(settings.master_key))
        if settings.master_key
        else None,
        "JARVIS_JWT_SECRET": secret_weakness(settings.jwt_secret, min_bits=96)
        if settings.jwt_secret
        else None,
        "JARVIS_DB_APP_PASSWORD": secret_weakness(
            settings.db_app_password, min_bits=50, min_chars=12
        )
        if settings.db_app_password
        else None,
    }
    weak = [
        f"{var} is {why}; generate one with: {_GENERATE[var]}"
        for var, why in problems.items()
        if why
    ]
    if weak:
        raise ConfigError("Weak keys refused in production: " + "; ".join(weak) + ".")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached)."""
    return load_settings()
