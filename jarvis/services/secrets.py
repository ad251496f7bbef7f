"""Users' provider API keys: write-only, envelope-encrypted, audited.

Values go in through :meth:`SecretsService.create` / :meth:`~SecretsService.update` and come out
only through :meth:`SecretsService.reveal` (for the orchestrator and tools; audited as
``secret.used``). Listings return :class:`SecretView`, which has no value field. Nothing here logs,
traces, audits or raises with a value in it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jarvis.clock import Clock
from jarvis.db.repositories.audit import AuditRepository
from jarvis.db.repositories.secrets import SecretRepository
from jarvis.db.tables import UserSecret
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import ConflictError, CryptoError, NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.security.crypto import EnvelopeCipher, SealedSecret
from jarvis.tracing import span

log = logging.getLogger(__name__)

PROVIDERS: tuple[str, ...] = (
    "openai",
    "anthropic",
    "openai_compatible",
    "tavily",
    "composio",
    "custom",
)
PROVIDER_LABELS: dict[str, str] = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "openai_compatible": "OpenAI-compatible (Ollama, vLLM, ...)",
    "tavily": "Tavily (web search)",
    "composio": "Composio",
    "custom": "Custom",
}
#: Providers whose secret carries a base URL (required / optional).
BASE_URL_REQUIRED = frozenset({"openai_compatible"})
BASE_URL_ALLOWED = frozenset({"openai_compatible", "custom"})

DEFAULT_NAME = "default"
MAX_VALUE_CHARS = 4096
MAX_NAME_CHARS = 100
MAX_BASE_URL_CHARS = 500
#: Shorter values show no "last four" (four characters of a short value say too much).
MIN_CHARS_FOR_LAST4 = 12

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_KEY_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "openai": (
        re.compile(r"^sk-(?!ant-)[A-Za-z0-9_\-]{20,}$"),
        'An OpenAI key starts with "sk-" followed by at least 20 letters, digits, "-" or "_".',
    ),
    "anthropic": (
        re.compile(r"^sk-ant-[A-Za-z0-9_\-]{20,}$"),
        'An Anthropic key starts with "sk-ant-" followed by at least 20 letters, digits, '
        '"-" or "_".',
    ),
    "tavily": (
        re.compile(r"^tvly-[A-Za-z0-9_\-]{16,}$"),
        'A Tavily key starts with "tvly-" followed by at least 16 letters, digits, "-" or "_".',
    ),
    "composio": (
        re.compile(r"^[A-Za-z0-9_\-]{8,}$"),
        'A Composio key is at least 8 letters, digits, "-" or "_" (no spaces).',
    ),
    "openai_compatible": (
        re.compile(r"^\S+$"),
        "An API key has no spaces. (For a server without keys, such as Ollama, enter any word.)",
    ),
}


@dataclass(frozen=True, slots=True)
class SecretView:
    """A secret as listings show it: never the value."""

    id: uuid.UUID
    provider: str
    name: str
    last4: str
    base_url: str | None
    key_version: int
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None

    @property
    def masked(self) -> str:
        """``••••abcd`` (or just dots when the value is too short to show any of it)."""
        return "••••" + self.last4


@dataclass(frozen=True, slots=True, repr=False)
class RevealedSecret:
    """A decrypted value for one use. ``repr``/``str`` never show it."""

    value: str
    base_url: str | None = None

    def __repr__(self) -> str:
        return f"RevealedSecret(value='****', base_url={self.base_url!r})"

    __str__ = __repr__


def _view(row: UserSecret) -> SecretView:
    return SecretView(
        id=row.id,
        provider=row.provider,
        name=row.name,
        last4=row.last4,
        base_url=row.base_url,
        key_version=row.key_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_used_at=row.last_used_at,
    )


def sealed_of(row: UserSecret) -> SealedSecret:
    return SealedSecret(
        ciphertext=bytes(row.ciphertext),
        nonce=bytes(row.nonce),
        wrapped_dek=bytes(row.wrapped_dek),
        key_version=row.key_version,
    )


def _store(row: UserSecret, sealed: SealedSecret) -> None:
    row.ciphertext = sealed.ciphertext
    row.nonce = sealed.nonce
    row.wrapped_dek = sealed.wrapped_dek
    row.key_version = sealed.key_version


def _last4(value: str) -> str:
    return value[-4:] if len(value) >= MIN_CHARS_FOR_LAST4 else ""


# -- validation ----------------------------------------------------------------------------------


def validate_provider(provider: str) -> str:
    provider = (provider or "").strip()
    if provider not in PROVIDERS:
        raise ValidationError("Choose a provider: " + ", ".join(PROVIDERS) + ".", field="provider")
    return provider


def validate_name(name: str | None) -> str:
    name = (name or "").strip() or DEFAULT_NAME
    if len(name) > MAX_NAME_CHARS:
        raise ValidationError(
            f"The name is too long (at most {MAX_NAME_CHARS} characters).", field="name"
        )
    if not _NAME_RE.match(name):
        raise ValidationError(
            'The name may contain letters, digits, spaces, ".", "-" and "_", '
            "starting with a letter or digit.",
            field="name",
        )
    return name


def validate_value(provider: str, value: str | None) -> str:
    """The trimmed value, or a :class:`ValidationError` whose message never quotes it."""
    value = (value or "").strip()
    if not value:
        raise ValidationError("Enter the secret value.", field="value")
    if len(value) > MAX_VALUE_CHARS:
        raise ValidationError(
            f"The secret value is too long (at most {MAX_VALUE_CHARS} characters).", field="value"
        )
    if _CONTROL_RE.search(value):
        raise ValidationError(
            "The secret value contains line breaks or control characters.", field="value"
        )
    fmt = _KEY_FORMATS.get(provider)
    if fmt is not None and not fmt[0].match(value):
        raise ValidationError("This does not look like a valid key. " + fmt[1], field="value")
    return value


def validate_base_url(provider: str, base_url: str | None) -> str | None:
    base_url = (base_url or "").strip() or None
    if base_url is None:
        if provider in BASE_URL_REQUIRED:
            raise ValidationError(
                "Enter the server's base URL, e.g. http://localhost:11434/v1.", field="base_url"
            )
        return None
    if provider not in BASE_URL_ALLOWED:
        raise ValidationError(
            "Only OpenAI-compatible and custom secrets take a base URL.", field="base_url"
        )
    if len(base_url) > MAX_BASE_URL_CHARS:
        raise ValidationError(
            f"The base URL is too long (at most {MAX_BASE_URL_CHARS} characters).", field="base_url"
        )
    parts = urlsplit(base_url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.password
    ):
        raise ValidationError(
            "The base URL must look like https://host[:port]/path (no credentials in it).",
            field="base_url",
        )
    return base_url.rstrip("/")


# -- the service ---------------------------------------------------------------------------------


class SecretsService:
    """Create, list, replace, delete and (for the orchestrator) reveal a user's secrets."""

    def __init__(self, uow: UnitOfWorkFactory, cipher: EnvelopeCipher, clock: Clock) -> None:
        self._uow = uow
        self._cipher = cipher
        self._clock = clock

    @property
    def cipher(self) -> EnvelopeCipher:
        return self._cipher

    @contextmanager
    def _span(self, name: str, principal: Principal, **attributes: Any) -> Iterator[None]:
        # Attribute names avoid "secret" (the tracing filter drops such keys); never a value.
        attrs = {
            "user.id": str(principal.user_id),
            **{f"vault.{k}": str(v) for k, v in attributes.items()},
        }
        with span(f"vault.{name}", attrs):
            yield

    def list(self, principal: Principal) -> list[SecretView]:
        """The user's secrets (provider, name, last four, dates): never a value."""
        with self._span("list", principal), self._uow(principal) as uow:
            return [_view(r) for r in SecretRepository(uow.session).all_for(principal.user_id)]

    def get(self, principal: Principal, secret_id: uuid.UUID) -> SecretView:
        """One of the user's secrets, or :class:`NotFoundError` (also for other users' ids)."""
        with self._uow(principal) as uow:
            row = SecretRepository(uow.session).get(principal.user_id, secret_id)
            if row is None:
                raise NotFoundError("That secret does not exist.")
            return _view(row)

    def create(
        self,
        principal: Principal,
        provider: str,
        name: str | None,
        value: str,
        *,
        base_url: str | None = None,
    ) -> SecretView:
        """Encrypt and save a new secret; validation errors save nothing."""
        provider = validate_provider(provider)
        name = validate_name(name)
        value = validate_value(provider, value)
        base_url = validate_base_url(provider, base_url)
        with self._span("create", principal, provider=provider), self._uow(principal) as uow:
            repo = SecretRepository(uow.session)
            if repo.by_name(principal.user_id, provider, name) is not None:
                raise self._duplicate(provider, name)
            secret_id = uuid.uuid4()
            sealed = self._cipher.seal(
                value,
                user_id=principal.user_id,
                secret_id=secret_id,
                dek=self._data_key(repo, principal),
            )
            now = self._clock.now()
            row = UserSecret(
                id=secret_id,
                user_id=principal.user_id,
                provider=provider,
                name=name,
                last4=_last4(value),
                base_url=base_url,
                created_at=now,
                updated_at=now,
                ciphertext=b"",
                nonce=b"",
                wrapped_dek=b"",
                key_version=sealed.key_version,
            )
            _store(row, sealed)
            try:
                repo.add(row)
            except ConflictError as exc:  # a concurrent create with the same name
                raise self._duplicate(provider, name) from exc
            AuditRepository(uow.session).record(
                "secret.created",
                user_id=principal.user_id,
                target=f"secret:{secret_id}",
                details={"provider": provider, "name": name, "key_version": sealed.key_version},
            )
            view = _view(row)
            uow.commit()
        log.info("secret created", extra={"secret_id": str(secret_id), "provider": provider})
        return view

    def update(
        self, principal: Principal, secret_id: uuid.UUID, value: str, *, base_url: str | None = None
    ) -> SecretView:
        """Replace a secret's value (and base URL, for providers that have one)."""
        with self._span("update", principal, item_id=secret_id), self._uow(principal) as uow:
            repo = SecretRepository(uow.session)
            row = repo.get(principal.user_id, secret_id, for_update=True)
            if row is None:
                raise NotFoundError("That secret does not exist.")
            value = validate_value(row.provider, value)
            if row.provider in BASE_URL_ALLOWED:
                row.base_url = validate_base_url(row.provider, base_url or row.base_url)
            elif base_url:
                validate_base_url(row.provider, base_url)
            try:
                dek = self._cipher.data_key_of(sealed_of(row), user_id=principal.user_id)
            except CryptoError:
                dek = self._data_key(repo, principal)  # a broken row gets a working key again
            _store(
                row, self._cipher.seal(value, user_id=principal.user_id, secret_id=row.id, dek=dek)
            )
            row.last4 = _last4(value)
            row.updated_at = self._clock.now()
            uow.session.flush()
            AuditRepository(uow.session).record(
                "secret.updated",
                user_id=principal.user_id,
                target=f"secret:{row.id}",
                details={
                    "provider": row.provider,
                    "name": row.name,
                    "key_version": row.key_version,
                },
            )
            view = _view(row)
            uow.commit()
        log.info("secret updated", extra={"secret_id": str(secret_id)})
        return view

    def delete(self, principal: Principal, secret_id: uuid.UUID) -> None:
        """Delete one of the user's secrets (:class:`NotFoundError` if it is not theirs)."""
        with self._span("delete", principal, item_id=secret_id), self._uow(principal) as uow:
            repo = SecretRepository(uow.session)
            row = repo.get(principal.user_id, secret_id, for_update=True)
            if row is None:
                raise NotFoundError("That secret does not exist.")
            details = {"provider": row.provider, "name": row.name}
            repo.remove(row)
            AuditRepository(uow.session).record(
                "secret.deleted",
                user_id=principal.user_id,
                target=f"secret:{secret_id}",
                details=details,
            )
            uow.commit()
        log.info("secret deleted", extra={"secret_id": str(secret_id)})

    def reveal(
        self, principal: Principal, provider: str, name: str | None = None
    ) -> RevealedSecret:
        """Decrypt a secret for use (orchestrator, tools): audited as ``secret.used``.

        Without ``name``: the secret named "default" if there is one, else the most recently
        updated one of ``provider``. :class:`NotFoundError` if the user has none;
        :class:`CryptoError` if it cannot be decrypted (audited as ``secret.decrypt_failed``).
        """
        with self._span("reveal", principal, provider=provider), self._uow(principal) as uow:
            repo = SecretRepository(uow.session)
            row = self._pick(repo, principal, provider, name)
            audit = AuditRepository(uow.session)
            target = f"secret:{row.id}"
            details = {"provider": row.provider, "name": row.name}
            try:
                value = self._cipher.open(
                    sealed_of(row), user_id=principal.user_id, secret_id=row.id
                )
            except CryptoError:
                audit.record(
                    "secret.decrypt_failed",
                    user_id=principal.user_id,
                    target=target,
                    details=details,
                )
                uow.commit()
                raise
            repo.touch_used(row.id, self._clock.now())
            audit.record("secret.used", user_id=principal.user_id, target=target, details=details)
            base_url = row.base_url
            uow.commit()
        return RevealedSecret(value=value, base_url=base_url)

    def providers_available(self, principal: Principal) -> set[str]:
        """Providers the user has at least one secret for."""
        with self._uow(principal) as uow:
            return SecretRepository(uow.session).providers(principal.user_id)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _duplicate(provider: str, name: str) -> ValidationError:
        return ValidationError(
            f'You already have a {PROVIDER_LABELS.get(provider, provider)} secret named "{name}". '
            "Choose another name, or replace that secret's value.",
            field="name",
        )

    def _pick(
        self, repo: SecretRepository, principal: Principal, provider: str, name: str | None
    ) -> UserSecret:
        if name is not None:
            row = repo.by_name(principal.user_id, provider, name)
        else:
            rows = repo.for_provider(principal.user_id, provider)
            row = next((r for r in rows if r.name == DEFAULT_NAME), rows[0] if rows else None)
        if row is None:
            label = PROVIDER_LABELS.get(provider, provider)
            raise NotFoundError(f"No {label} key is saved. Add one on the Secrets page.")
        return row

    def _data_key(self, repo: SecretRepository, principal: Principal) -> bytes:
        """The user's data key (from any of their rows), or a new one for their first secret."""
        existing = repo.any_of(principal.user_id)
        if existing is not None:
            try:
                return self._cipher.data_key_of(sealed_of(existing), user_id=principal.user_id)
            except CryptoError:
                log.warning(
                    "could not reuse the user's data key; a new one is used",
                    extra={"secret_id": str(existing.id)},
                )
        return self._cipher.new_data_key()
