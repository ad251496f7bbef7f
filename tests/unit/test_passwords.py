"""argon2id with the OWASP parameters; lengths are characters, never truncated."""

from __future__ import annotations

import time

import pytest

from jarvis.errors import ValidationError
from jarvis.security.passwords import MAX_LENGTH, PasswordHasher, validate_password


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()  # the production parameters


def test_stored_hash_names_argon2id_and_the_owasp_parameters(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify(stored, "correct horse battery")
    assert not hasher.verify(stored, "correct horse batterY")
    assert not hasher.needs_rehash(stored)


def test_a_hash_with_other_parameters_needs_rehash(hasher: PasswordHasher) -> None:
    weak = PasswordHasher(memory_cost=1024, time_cost=1).hash("correct horse battery")
    assert "m=1024,t=1" in weak
    assert hasher.verify(weak, "correct horse battery")
    assert hasher.needs_rehash(weak)


def test_unicode_passwords_work_and_are_counted_in_characters(hasher: PasswordHasher) -> None:
    pw = "pässwörd-🔑-密码-пароль"
    assert hasher.verify(hasher.hash(pw), pw)
    validate_password("🔑" * 8)  # 8 characters (32 bytes)
    with pytest.raises(ValidationError):
        validate_password("🔑" * 7)


def test_long_passwords_are_not_truncated(hasher: PasswordHasher) -> None:
    base = "a" * (MAX_LENGTH - 1)
    stored = hasher.hash(base + "b")
    assert hasher.verify(stored, base + "b")
    # Differs only in the last (1024th) character: bcrypt-style truncation would accept it.
    assert not hasher.verify(stored, base + "c")


def test_too_long_input_is_refused_quickly(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery")
    started = time.perf_counter()
    assert not hasher.verify(stored, "x" * 1_000_000)
    with pytest.raises(ValidationError):
        hasher.hash("x" * (MAX_LENGTH + 1))
    assert time.perf_counter() - started < 0.05


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValidationError):
        validate_password("1234567")
    validate_password("12345678")
