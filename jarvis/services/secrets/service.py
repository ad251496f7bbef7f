"""The secrets service: create, list, replace, delete and (for the orchestrator and tools)
reveal a user's provider keys. See the package docstring for the rules."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from jarvis.clock import Clock
from jarvis.db.repositories.secrets import SecretRepository
from jarvis.db.tables import UserSecret
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import ConflictError, CryptoError, NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.key_check import CHECKABLE_PROVIDERS, KeyCheck, KeyChecker
from jarvis.security.crypto import EnvelopeCipher, SealedSecret
from jarvis.security.outbound import OutboundPolicy
from jarvis.services.secrets.validation import (
    BASE_URL_ALLOWED,
    DEFAULT_NAME,
    MIN_CHARS_FOR_LAST4,
    PROVIDER_LABELS,
    secret_label,
    validate_base_url,
    validate_name,
    validate_provider,
    validate_value,
)
from jarvis.services.secrets.views import RevealedSecret, SecretView
from jarvis.tracing import span

log = logging.getLogger(__name__)


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


class SecretsService:
    """Create, list, replace, delete and (for the orchestrator) reveal a user's secrets."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cipher: EnvelopeCipher,
        clock: Clock,
        *,
        outbound: OutboundPolicy | None = None,
        key_checker: KeyChecker | None = None,
    ) -> None:
        self._uow = uow
        self._cipher = cipher
        self._clock = clock
        # Base URLs make this server connect somewhere: only public addresses, unless allowed.
        self._outbound = outbound or OutboundPolicy()
        self._checker = key_checker or KeyChecker(outbound=self._outbound)

    @property
    def cipher(self) -> EnvelopeCipher:
        return self._cipher

    @contextmanager
    def _span(self, name: str, principal: Principal, **attributes: object) -> Iterator[None]:
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
            return [_view(r) for r in uow.secrets.all_for(principal.user_id)]

    def get(self, principal: Principal, secret_id: uuid.UUID) -> SecretView:
        """One of the user's secrets, or :class:`NotFoundError` (also for other users' ids)."""
        with self._uow(principal) as uow:
            row = uow.secrets.get(principal.user_id, secret_id)
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
        if base_url is not None:
            self._outbound.check_url(base_url, field="base_url")
        with self._span("create", principal, provider=provider), self._uow(principal) as uow:
            repo = uow.secrets
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
            uow.audit.record(
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
        self,
        principal: Principal,
        secret_id: uuid.UUID,
        value: str | None = None,
        *,
        name: str | None = None,
        base_url: str | None = None,
    ) -> SecretView:
        """Replace a secret's value and / or rename it (and change the base URL, for
        providers that have one). ``value=None`` keeps the value (an empty string is not a
        value: :class:`ValidationError`); ``name=None`` keeps the name. Nothing to change is a
        :class:`ValidationError` too."""
        if value is None and name is None and base_url is None:
            raise ValidationError("Give a new value, name or base URL.", field="value")
        with self._span("update", principal, item_id=secret_id), self._uow(principal) as uow:
            repo = uow.secrets
            row = repo.get(principal.user_id, secret_id, for_update=True)
            if row is None:
                raise NotFoundError("That secret does not exist.")
            if value is not None:
                value = validate_value(row.provider, value)
            if name is not None:
                name = validate_name(name)
                other = repo.by_name(principal.user_id, row.provider, name)
                if other is not None and other.id != row.id:
                    raise self._duplicate(row.provider, name)
            if row.provider in BASE_URL_ALLOWED:
                row.base_url = validate_base_url(row.provider, base_url or row.base_url)
                if base_url and row.base_url is not None:
                    self._outbound.check_url(row.base_url, field="base_url")
            elif base_url:
                validate_base_url(row.provider, base_url)
            if value is not None:
                try:
                    dek = self._cipher.data_key_of(sealed_of(row), user_id=principal.user_id)
                except CryptoError:
                    dek = self._data_key(repo, principal)  # a broken row gets a working key again
                sealed = self._cipher.seal(
                    value, user_id=principal.user_id, secret_id=row.id, dek=dek
                )
                _store(row, sealed)
                row.last4 = _last4(value)
            renamed_from = None
            if name is not None and name != row.name:
                renamed_from, row.name = row.name, name
            row.updated_at = self._clock.now()
            uow.flush()  # a concurrent rename to the same name: ConflictError (409)
            uow.audit.record(
                "secret.updated",
                user_id=principal.user_id,
                target=f"secret:{row.id}",
                details={
                    "provider": row.provider,
                    "name": row.name,
                    "key_version": row.key_version,
                    "value_replaced": value is not None,
                    **({"renamed_from": renamed_from} if renamed_from is not None else {}),
                },
            )
            view = _view(row)
            uow.commit()
        log.info("secret updated", extra={"secret_id": str(secret_id)})
        return view

    def delete(self, principal: Principal, secret_id: uuid.UUID) -> None:
        """Delete one of the user's secrets (:class:`NotFoundError` if it is not theirs)."""
        with self._span("delete", principal, item_id=secret_id), self._uow(principal) as uow:
            repo = uow.secrets
            row = repo.get(principal.user_id, secret_id, for_update=True)
            if row is None:
                raise NotFoundError("That secret does not exist.")
            details = {"provider": row.provider, "name": row.name}
            repo.remove(row)
            uow.audit.record(
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
            repo = uow.secrets
            row = self._pick(repo, principal, provider, name)
            audit = uow.audit
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

    def test(self, principal: Principal, secret_id: uuid.UUID) -> KeyCheck:
        """Check one of the user's keys against its provider: a model-list call with a short
        timeout (:mod:`jarvis.llm.key_check`). The answer says how many models the key sees or
        why it failed, in words that never contain the key. Audited as ``secret.tested``.
        :class:`ValidationError` for a provider whose keys cannot be tested."""
        with self._span("test", principal, item_id=secret_id), self._uow(principal) as uow:
            row = uow.secrets.get(principal.user_id, secret_id)
            if row is None:
                raise NotFoundError("That secret does not exist.")
            if row.provider not in CHECKABLE_PROVIDERS:
                raise ValidationError(
                    f"Jarvis cannot test {secret_label(row.provider)}: only OpenAI, Anthropic "
                    "and OpenAI-compatible keys have a model list to ask for.",
                    field="provider",
                )
            target = f"secret:{row.id}"
            provider, name, base_url = row.provider, row.name, row.base_url
            try:
                value = self._cipher.open(
                    sealed_of(row), user_id=principal.user_id, secret_id=row.id
                )
            except CryptoError:
                uow.audit.record(
                    "secret.decrypt_failed",
                    user_id=principal.user_id,
                    target=target,
                    details={"provider": provider, "name": name},
                )
                uow.commit()
                raise
        # No transaction stays open while the provider answers.
        result = self._checker.check(provider, value, base_url)
        del value
        with self._uow(principal) as uow:
            uow.audit.record(
                "secret.tested",
                user_id=principal.user_id,
                target=target,
                details={
                    "provider": provider,
                    "name": name,
                    "works": result.ok,
                    **({"status": result.status} if result.status is not None else {}),
                },
            )
            uow.commit()
        return result

    def testable(self, provider: str) -> bool:
        """Whether keys of ``provider`` can be tested (:meth:`test`)."""
        return provider in CHECKABLE_PROVIDERS

    def providers_available(self, principal: Principal) -> set[str]:
        """Providers the user has at least one secret for."""
        with self._uow(principal) as uow:
            return uow.secrets.providers(principal.user_id)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _duplicate(provider: str, name: str) -> ValidationError:
        return ValidationError(
            f'You already have {secret_label(provider)} named "{name}". '
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
