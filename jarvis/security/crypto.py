"""Envelope encryption for user secrets (AES-256-GCM, ``cryptography``).

Two layers:

* a random 256-bit **data key** (DEK) per user encrypts that user's secret values;
* the **master key** (``JARVIS_MASTER_KEY``, version ``JARVIS_MASTER_KEY_VERSION``) wraps the DEK.

Every stored secret row carries its own copy of the wrapped DEK (``wrapped_dek``) and the master
key version that wrapped it (``key_version``), so a row can always be opened on its own and a
master-key rotation only has to touch rows, one user per transaction.

Associated data binds every ciphertext to where it belongs:

* the wrapped DEK to ``(user_id, key_version)``;
* the secret value to ``(user_id, secret_id, key_version)``.

A flipped bit, a truncated blob, a ciphertext copied into another user's or another secret's
row, or a wrong master key all fail closed with :class:`~jarvis.errors.CryptoError`. Failures are
logged with ids and the reason only - never a value or a key.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jarvis.config import Settings
from jarvis.errors import ConfigError, CryptoError

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
#: Format tag inside the associated data: bump if the layout ever changes.
_AAD_DEK = b"jarvis/dek/v1"
_AAD_SECRET = b"jarvis/secret/v1"


def _aad(*parts: object) -> bytes:
    return b"|".join(p if isinstance(p, bytes) else str(p).encode() for p in parts)


def new_nonce() -> bytes:
    """A fresh random 96-bit nonce (never reused: random, from the OS CSPRNG)."""
    return os.urandom(NONCE_BYTES)


class KeyRing:
    """Master keys by version: the ``current`` one wraps new data keys; the others only unwrap."""

    def __init__(self, current_version: int, keys: Mapping[int, bytes]) -> None:
        if current_version not in keys:
            raise CryptoError("The current master key version has no key.")
        for version, key in keys.items():
            if len(key) != KEY_BYTES:
                raise CryptoError(f"Master key version {version} must be 32 bytes.")
        self.current_version = current_version
        self._keys = dict(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The current master key plus ``JARVIS_OLD_MASTER_KEYS`` (readable until retired)."""
        keys = dict(settings.old_master_keys_bytes)
        current = settings.master_key_bytes
        if keys.get(settings.master_key_version, current) != current:
            raise ConfigError(
                f"JARVIS_OLD_MASTER_KEYS lists version {settings.master_key_version} with another "
                "key than JARVIS_MASTER_KEY (the current version): give the new key a new version."
            )
        keys[settings.master_key_version] = current
        return cls(settings.master_key_version, keys)

    @property
    def versions(self) -> list[int]:
        return sorted(self._keys)

    def key(self, version: int) -> bytes:
        try:
            return self._keys[version]
        except KeyError:
            raise CryptoError(
                f"Master key version {version} is not configured (retired or missing)."
            ) from None

    def with_key(self, version: int, key: bytes, *, current: bool = False) -> KeyRing:
        """A copy that also knows ``version`` (optionally as the current version)."""
        keys = {**self._keys, version: key}
        return KeyRing(version if current else self.current_version, keys)

    def __repr__(self) -> str:  # never the keys
        return f"KeyRing(current_version={self.current_version}, versions={self.versions})"


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """What a secret row stores: nothing here is readable without the master key."""

    ciphertext: bytes
    nonce: bytes
    wrapped_dek: bytes
    key_version: int

    def __repr__(self) -> str:
        size = len(self.ciphertext)
        return f"SealedSecret(key_version={self.key_version}, ciphertext=<{size} bytes>)"


class EnvelopeCipher:
    """Seal / open secret values for one user and one secret id with a :class:`KeyRing`."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    # -- data keys ---------------------------------------------------------------------------

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def wrap_data_key(
        self, dek: bytes, user_id: uuid.UUID, version: int | None = None
    ) -> tuple[bytes, int]:
        """Return ``(nonce || AES-GCM(master, dek), version)``."""
        version = self.keyring.current_version if version is None else version
        nonce = new_nonce()
        wrapped = AESGCM(self.keyring.key(version)).encrypt(
            nonce, dek, _aad(_AAD_DEK, user_id, version)
        )
        return nonce + wrapped, version

    def unwrap_data_key(self, wrapped: bytes, user_id: uuid.UUID, version: int) -> bytes:
        """The plain DEK, or :class:`CryptoError` (wrong key, tampered, truncated, other user)."""
        if version not in self.keyring.versions:
            raise self._failure(
                f"master key version {version} is not configured (retired or missing)",
                user_id=user_id,
                key_version=version,
            )
        key = self.keyring.key(version)
        if len(wrapped) != NONCE_BYTES + KEY_BYTES + TAG_BYTES:
            raise self._failure(
                "data key has the wrong length", user_id=user_id, key_version=version
            )
        try:
            dek = AESGCM(key).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad(_AAD_DEK, user_id, version)
            )
        except InvalidTag:
            raise self._failure(
                "data key failed authentication (wrong master key, tampered or another user's)",
                user_id=user_id,
                key_version=version,
            ) from None
        return dek

    # -- values ------------------------------------------------------------------------------

    def seal(
        self,
        value: str,
        *,
        user_id: uuid.UUID,
        secret_id: uuid.UUID,
        dek: bytes | None = None,
        version: int | None = None,
    ) -> SealedSecret:
        """Encrypt ``value`` with the user's data key (a new one when ``dek`` is None)."""
        dek = dek if dek is not None else self.new_data_key()
        wrapped, version = self.wrap_data_key(dek, user_id, version)
        nonce = new_nonce()
        ciphertext = AESGCM(dek).encrypt(
            nonce, value.encode("utf-8"), _aad(_AAD_SECRET, user_id, secret_id, version)
        )
        return SealedSecret(
            ciphertext=ciphertext, nonce=nonce, wrapped_dek=wrapped, key_version=version
        )

    def open(self, sealed: SealedSecret, *, user_id: uuid.UUID, secret_id: uuid.UUID) -> str:
        """Decrypt a sealed value, or fail closed with :class:`CryptoError`."""
        dek = self.unwrap_data_key(sealed.wrapped_dek, user_id, sealed.key_version)
        return self._open_with(dek, sealed, user_id=user_id, secret_id=secret_id)

    def _open_with(
        self, dek: bytes, sealed: SealedSecret, *, user_id: uuid.UUID, secret_id: uuid.UUID
    ) -> str:
        if len(sealed.nonce) != NONCE_BYTES or len(sealed.ciphertext) < TAG_BYTES:
            raise self._failure(
                "ciphertext or nonce has the wrong length",
                user_id=user_id,
                secret_id=secret_id,
                key_version=sealed.key_version,
            )
        try:
            plain = AESGCM(dek).decrypt(
                sealed.nonce,
                sealed.ciphertext,
                _aad(_AAD_SECRET, user_id, secret_id, sealed.key_version),
            )
        except InvalidTag:
            raise self._failure(
                "ciphertext failed authentication (tampered, truncated or moved from another row)",
                user_id=user_id,
                secret_id=secret_id,
                key_version=sealed.key_version,
            ) from None
        return plain.decode("utf-8")

    def data_key_of(self, sealed: SealedSecret, *, user_id: uuid.UUID) -> bytes:
        """The user's plain data key from one of their rows (to seal a new secret with it)."""
        return self.unwrap_data_key(sealed.wrapped_dek, user_id, sealed.key_version)

    def reseal(
        self, sealed: SealedSecret, *, user_id: uuid.UUID, secret_id: uuid.UUID, version: int
    ) -> SealedSecret:
        """Re-wrap the row's data key under master key ``version`` (rotation).

        The data key itself does not change. Because the value's associated data binds the key
        version, the value is re-sealed with the same data key and a fresh nonce in the same step
        (in memory only); the old version's key is needed to open it first.
        """
        dek = self.unwrap_data_key(sealed.wrapped_dek, user_id, sealed.key_version)
        value = self._open_with(dek, sealed, user_id=user_id, secret_id=secret_id)
        return self.seal(value, user_id=user_id, secret_id=secret_id, dek=dek, version=version)

    @staticmethod
    def _failure(reason: str, **ids: object) -> CryptoError:
        log.warning(
            "secret decryption failed: %s",
            reason,
            extra={k: str(v) for k, v in ids.items()},
        )
        return CryptoError(f"A stored secret could not be decrypted: {reason}.")
