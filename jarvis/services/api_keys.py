"""Personal API keys: programs act as their user (same row-level security, limits, budget).

A key looks like ``jrv_<8 hex>_<43 url-safe chars>`` (256 random bits). It is shown once, when
created; only its SHA-256 is stored, with the first characters (``jrv_1a2b3c4d``) to recognise
it in lists. Keys may expire, are revoked one by one, and record when they were last used.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from jarvis.clock import Clock
from jarvis.db.tables import ApiKey
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import NotFoundError, TokenError, ValidationError
from jarvis.identity import Principal
from jarvis.services.auth.views import principal_from

PREFIX = "jrv_"
MAX_KEYS_PER_USER = 50
MAX_EXPIRY_DAYS = 3650


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    """A key as lists show it (never the key itself)."""

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    """A new key: ``secret`` is shown this once and never again."""

    key: ApiKeyView
    secret: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"CreatedApiKey(key={self.key!r}, secret='***')"


def _view(row: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        row.id,
        row.name,
        row.prefix,
        row.created_at,
        row.expires_at,
        row.last_used_at,
        row.revoked_at,
    )


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class ApiKeyService:
    """Create, list, revoke personal API keys; authenticate a request's key."""

    prefix = PREFIX

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def create(
        self, principal: Principal, name: str, *, expires_in_days: int | None = None
    ) -> CreatedApiKey:
        """A new key for ``principal`` (``expires_in_days``: none = until revoked)."""
        clean = " ".join((name or "").split())
        if not clean or len(clean) > 100 or any(ord(c) < 32 for c in clean):
            raise ValidationError("Give the key a name (up to 100 characters).", field="name")
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise ValidationError(
                f"Expiry must be between 1 and {MAX_EXPIRY_DAYS} days.", field="expires_in_days"
            )
        now = self._clock.now()
        short = secrets.token_hex(4)
        secret = f"{PREFIX}{short}_{secrets.token_urlsafe(32)}"
        with self._uow(principal) as uow:
            if len(uow.api_keys.list(principal.user_id)) >= MAX_KEYS_PER_USER:
                raise ValidationError(
                    f"You have {MAX_KEYS_PER_USER} keys already; revoke one first.", field="name"
                )
            row = uow.api_keys.add(
                ApiKey(
                    id=uuid.uuid4(),
                    user_id=principal.user_id,
                    name=clean,
                    key_hash=hash_key(secret),
                    prefix=f"{PREFIX}{short}",
                    created_at=now,
                    expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
                )
            )
            uow.audit.record(
                "api_key.created",
                user_id=principal.user_id,
                target=f"api_key:{row.id}",
                details={"name": clean, "prefix": row.prefix, "expires_in_days": expires_in_days},
            )
            view = _view(row)
            uow.commit()
        return CreatedApiKey(view, secret)

    def list(self, principal: Principal) -> list[ApiKeyView]:
        """The user's keys, newest first (revoked ones too, marked)."""
        with self._uow(principal) as uow:
            return [_view(r) for r in uow.api_keys.list(principal.user_id)]

    def revoke(self, principal: Principal, key_id: uuid.UUID) -> None:
        """Stop a key working at once."""
        with self._uow(principal) as uow:
            row = uow.api_keys.get(key_id)
            if row is None:
                raise NotFoundError("That API key does not exist.")
            if uow.api_keys.revoke(key_id, self._clock.now()):
                uow.audit.record(
                    "api_key.revoked",
                    user_id=principal.user_id,
                    target=f"api_key:{key_id}",
                    details={"prefix": row.prefix},
                )
            uow.commit()

    def authenticate(self, secret: str) -> Principal:
        """The user a request's key acts as (:class:`TokenError` for anything else)."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            raise TokenError("That API key is not valid.")
        with self._uow() as uow:
            found = uow.api_keys.key_user(hash_key(secret), self._clock.now())
            uow.commit()
        if found is None:
            raise TokenError("That API key is not valid, expired or revoked.")
        return principal_from(found.user_id, found.email, found.role, found.display_name)
