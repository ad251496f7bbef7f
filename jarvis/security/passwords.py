"""Password hashing with argon2id (m=19456 KiB, t=2, p=1), per OWASP."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from jarvis.errors import ValidationError
from jarvis.validation import is_valid_unicode

MIN_LENGTH = 8
MAX_LENGTH = 1024


def validate_password(password: str) -> None:
    """Refuse passwords outside 8-1024 characters (counted as characters, never truncated),
    and text that cannot be encoded (a lone surrogate: nothing could type it back)."""
    if not is_valid_unicode(password):
        raise ValidationError(
            "The password contains characters that are not valid text.", field="password"
        )
    if len(password) > MAX_LENGTH:
        raise ValidationError(
            f"Password must be at most {MAX_LENGTH} characters.", field="password"
        )
    if len(password) < MIN_LENGTH:
        raise ValidationError(
            f"Password must be at least {MIN_LENGTH} characters.", field="password"
        )


class PasswordHasher:
    """argon2id hashing; ``verify`` never raises for a mismatch, it returns False."""

    def __init__(self, memory_cost: int = 19456, time_cost: int = 2, parallelism: int = 1) -> None:
        self._hasher = _Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        # Spent on unknown emails so they take as long as a wrong password.
        self._dummy_hash = self._hasher.hash("jarvis-dummy-password")

    def hash(self, password: str) -> str:
        validate_password(password)
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        if len(password) > MAX_LENGTH or not is_valid_unicode(password):
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def spend_dummy(self, password: str) -> None:
        """Do the work of a verification for an account that does not exist."""
        self.verify(self._dummy_hash, password[:MAX_LENGTH].encode("utf-8", "replace").decode())

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
