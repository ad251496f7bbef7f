"""Master-key rotation: re-wrap every user's data key under a new master key version.

How it runs (``jarvis secrets rotate-master-key``):

1. **Check** (read only): every secret row of every user is opened with the configured keys
   (``JARVIS_MASTER_KEY`` + ``JARVIS_OLD_MASTER_KEYS``). If any fails - typically a wrong old key -
   the rotation stops before writing anything.
2. **Rotate**: one transaction per user locks that user's rows, unwraps each row's data key with
   its version's key, wraps it with the new key, re-seals the value with the same data key and a
   fresh nonce (the value's associated data binds the key version), records the new version on
   the row, writes a ``secret.key_rotated`` audit event and commits.

Reads keep working throughout: a row is always whole at one version (old or new) and an app
process that knows both keys reads both. Old versions stay readable for as long as they are
listed in ``JARVIS_OLD_MASTER_KEYS``; :meth:`KeyRotation.retire` checks no row still needs one.

Why per-user units of work on the app role (not the owner engine): the walk is subject to
row-level security exactly like the app (each transaction sees one user's rows), works with an
owner that is not a superuser (``FORCE ROW LEVEL SECURITY`` applies to owners too), and keeps
each user's change atomic. Only the list of users holding secrets comes from a narrow definer
function (migration 0013).
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import CryptoError, ValidationError
from jarvis.security.crypto import KEY_BYTES, EnvelopeCipher, KeyRing
from jarvis.services.secrets import sealed_of

log = logging.getLogger(__name__)

#: Key versions are stored in an ``integer`` column.
MAX_KEY_VERSION = 2**31 - 1


@dataclass
class RotationReport:
    new_version: int
    users: int = 0
    rotated: int = 0
    already_current: int = 0
    by_version_before: dict[int, int] = field(default_factory=dict)


def parse_master_key(text: str) -> bytes:
    """A master key from 64 hex characters (what ``openssl rand -hex 32`` prints)."""
    try:
        raw = bytes.fromhex((text or "").strip())
    except ValueError:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ValidationError("The new master key must be 64 hexadecimal characters (32 bytes).")
    return raw


class KeyRotation:
    """Rotate, inspect and retire master key versions across all users."""

    def __init__(self, uow: UnitOfWorkFactory, keyring: KeyRing) -> None:
        self._uow = uow
        self._keyring = keyring

    def _user_ids(self) -> list[uuid.UUID]:
        with self._uow() as uow:
            return uow.secret_owners.all_ids()

    def key_versions_in_use(self) -> dict[int, int]:
        """How many secret rows use each master key version."""
        totals: dict[int, int] = {}
        for user_id in self._user_ids():
            with self._uow.for_user_id(user_id) as uow:
                for version, count in uow.secrets.count_by_key_version(user_id).items():
                    totals[version] = totals.get(version, 0) + count
        return dict(sorted(totals.items()))

    def target_version(self, new_key: bytes, new_version: int | None = None) -> int:
        """The version ``new_key`` gets: its known one, ``new_version``, or the next free one."""
        known = {
            v for v in self._keyring.versions if hmac.compare_digest(self._keyring.key(v), new_key)
        }
        if new_version is None:
            if known:
                return max(known)
            in_db = self.key_versions_in_use()
            return max([*self._keyring.versions, *in_db]) + 1
        if not 1 <= new_version <= MAX_KEY_VERSION:
            raise ValidationError(f"The key version must be 1 to {MAX_KEY_VERSION:,}.")
        if new_version in self._keyring.versions and new_version not in known:
            raise ValidationError(
                f"Key version {new_version} already belongs to another master key."
            )
        return new_version

    def rotate(
        self,
        new_key: bytes,
        new_version: int | None = None,
        *,
        on_user_done: Callable[[uuid.UUID], None] | None = None,
    ) -> RotationReport:
        """Re-wrap every data key under ``new_key``; stop before writing if a row is unreadable."""
        version = self.target_version(new_key, new_version)
        cipher = EnvelopeCipher(self._keyring.with_key(version, new_key))
        user_ids = self._user_ids()
        report = RotationReport(new_version=version)
        self._check_all(cipher, user_ids, report)
        for user_id in user_ids:
            self._rotate_user(cipher, user_id, version, report)
            if on_user_done is not None:
                on_user_done(user_id)
        log.info(
            "master key rotated",
            extra={"key_version": version, "users": report.users, "rotated": report.rotated},
        )
        return report

    def retire(self, version: int) -> None:
        """Check no row needs ``version`` any more (then drop it from JARVIS_OLD_MASTER_KEYS)."""
        if version == self._keyring.current_version:
            raise ValidationError(
                f"Version {version} is the current master key; "
                "rotate to a new key before retiring it."
            )
        remaining = self.key_versions_in_use().get(version, 0)
        if remaining:
            raise ValidationError(
                f"{remaining} secret(s) still use master key version {version}: "
                "run `jarvis secrets rotate-master-key` first."
            )

    # -- steps ---------------------------------------------------------------------------------

    def _check_all(
        self, cipher: EnvelopeCipher, user_ids: list[uuid.UUID], report: RotationReport
    ) -> None:
        failures = 0
        for user_id in user_ids:
            with self._uow.for_user_id(user_id) as uow:
                for row in uow.secrets.all_for(user_id):
                    report.by_version_before[row.key_version] = (
                        report.by_version_before.get(row.key_version, 0) + 1
                    )
                    try:
                        cipher.open(sealed_of(row), user_id=user_id, secret_id=row.id)
                    except CryptoError:
                        failures += 1
        if failures:
            raise CryptoError(
                f"{failures} secret(s) cannot be opened with the configured master keys "
                "(is JARVIS_MASTER_KEY / JARVIS_OLD_MASTER_KEYS right?). Nothing was changed."
            )

    def _rotate_user(
        self, cipher: EnvelopeCipher, user_id: uuid.UUID, version: int, report: RotationReport
    ) -> None:
        with self._uow.for_user_id(user_id) as uow:
            rows = uow.secrets.lock_all(user_id)
            if not rows:
                return
            before: set[int] = set()
            changed = 0
            for row in rows:
                if row.key_version == version:
                    report.already_current += 1
                    continue
                before.add(row.key_version)
                sealed = cipher.reseal(
                    sealed_of(row), user_id=user_id, secret_id=row.id, version=version
                )
                row.ciphertext = sealed.ciphertext
                row.nonce = sealed.nonce
                row.wrapped_dek = sealed.wrapped_dek
                row.key_version = sealed.key_version
                changed += 1
            if changed:
                uow.flush()
                uow.audit.record(
                    "secret.key_rotated",
                    user_id=user_id,
                    actor_id=None,
                    target=f"user:{user_id}",
                    details={
                        "from_versions": sorted(before),
                        "to_version": version,
                        "secrets": changed,
                    },
                )
            uow.commit()
        report.users += 1
        report.rotated += changed
