"""Envelope encryption: round trip, fail-closed on tampering / truncation / moved rows, nonces."""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid

import pytest

from jarvis.config import load_settings, parse_master_keys
from jarvis.errors import ConfigError, CryptoError
from jarvis.security.crypto import NONCE_BYTES, EnvelopeCipher, KeyRing, SealedSecret

K1 = bytes.fromhex("11" * 32)
K2 = bytes.fromhex("22" * 32)
VALUE = "sk-test-Round7rip-Value-0123456789abcdef"


@pytest.fixture
def cipher() -> EnvelopeCipher:
    return EnvelopeCipher(KeyRing(1, {1: K1}))


def _seal(cipher: EnvelopeCipher, value: str = VALUE) -> tuple[uuid.UUID, uuid.UUID, SealedSecret]:
    user_id, secret_id = uuid.uuid4(), uuid.uuid4()
    return user_id, secret_id, cipher.seal(value, user_id=user_id, secret_id=secret_id)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_round_trip_and_nothing_readable_in_the_sealed_parts(cipher: EnvelopeCipher) -> None:
    user_id, secret_id, sealed = _seal(cipher)
    assert cipher.open(sealed, user_id=user_id, secret_id=secret_id) == VALUE
    assert len(sealed.nonce) == NONCE_BYTES
    assert sealed.key_version == 1
    for blob in (sealed.ciphertext, sealed.nonce, sealed.wrapped_dek):
        assert VALUE.encode() not in blob and VALUE[-12:].encode() not in blob
    assert VALUE not in repr(sealed)


def test_unicode_and_long_values_round_trip(cipher: EnvelopeCipher) -> None:
    for value in ("päss wörd ✓ 鍵", "x" * 4096):
        user_id, secret_id, sealed = _seal(cipher, value)
        assert cipher.open(sealed, user_id=user_id, secret_id=secret_id) == value


def test_same_value_twice_gives_different_ciphertexts(cipher: EnvelopeCipher) -> None:
    user_id, secret_id = uuid.uuid4(), uuid.uuid4()
    a = cipher.seal(VALUE, user_id=user_id, secret_id=secret_id)
    b = cipher.seal(VALUE, user_id=user_id, secret_id=secret_id)
    assert a.ciphertext != b.ciphertext and a.nonce != b.nonce and a.wrapped_dek != b.wrapped_dek


@pytest.mark.parametrize("part", ["ciphertext", "nonce", "wrapped_dek"])
def test_every_flipped_bit_fails_closed(cipher: EnvelopeCipher, part: str) -> None:
    user_id, secret_id, sealed = _seal(cipher)
    blob: bytes = getattr(sealed, part)
    for index in range(len(blob)):
        tampered = dataclasses.replace(sealed, **{part: _flip(blob, index)})
        with pytest.raises(CryptoError):
            cipher.open(tampered, user_id=user_id, secret_id=secret_id)


@pytest.mark.parametrize("part", ["ciphertext", "nonce", "wrapped_dek"])
def test_truncated_or_extended_blobs_fail_closed(cipher: EnvelopeCipher, part: str) -> None:
    user_id, secret_id, sealed = _seal(cipher)
    blob: bytes = getattr(sealed, part)
    for broken in (blob[:-1], blob[: len(blob) // 2], b"", blob + b"\x00"):
        with pytest.raises(CryptoError):
            cipher.open(
                dataclasses.replace(sealed, **{part: broken}), user_id=user_id, secret_id=secret_id
            )


def test_a_row_moved_to_another_user_or_secret_fails_closed(cipher: EnvelopeCipher) -> None:
    user_a, secret_a, sealed_a = _seal(cipher)
    user_b, secret_b, sealed_b = _seal(cipher)
    # The whole row copied into another user's row.
    with pytest.raises(CryptoError):
        cipher.open(sealed_a, user_id=user_b, secret_id=secret_b)
    # Same user, another secret's id (the data key is the same; the value is bound to its id).
    with pytest.raises(CryptoError):
        cipher.open(sealed_a, user_id=user_a, secret_id=uuid.uuid4())
    # Ciphertext + nonce copied next to another user's wrapped data key.
    mixed = dataclasses.replace(sealed_b, ciphertext=sealed_a.ciphertext, nonce=sealed_a.nonce)
    with pytest.raises(CryptoError):
        cipher.open(mixed, user_id=user_b, secret_id=secret_b)
    # Another user's wrapped data key under this user's row.
    with pytest.raises(CryptoError):
        cipher.open(
            dataclasses.replace(sealed_a, wrapped_dek=sealed_b.wrapped_dek),
            user_id=user_a,
            secret_id=secret_a,
        )


def test_two_secrets_of_one_user_swapped_fail_closed(cipher: EnvelopeCipher) -> None:
    user_id = uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    dek = cipher.new_data_key()
    a = cipher.seal("value-one-0123456789", user_id=user_id, secret_id=first, dek=dek)
    b = cipher.seal("value-two-0123456789", user_id=user_id, secret_id=second, dek=dek)
    assert cipher.open(a, user_id=user_id, secret_id=first) == "value-one-0123456789"
    with pytest.raises(CryptoError):
        cipher.open(b, user_id=user_id, secret_id=first)
    with pytest.raises(CryptoError):
        cipher.open(a, user_id=user_id, secret_id=second)


def test_key_version_is_bound(cipher: EnvelopeCipher) -> None:
    both = EnvelopeCipher(KeyRing(1, {1: K1, 2: K1}))  # same key under two versions
    user_id, secret_id = uuid.uuid4(), uuid.uuid4()
    sealed = both.seal(VALUE, user_id=user_id, secret_id=secret_id)
    with pytest.raises(CryptoError):
        both.open(dataclasses.replace(sealed, key_version=2), user_id=user_id, secret_id=secret_id)


def test_wrong_or_missing_master_key_fails_closed(cipher: EnvelopeCipher) -> None:
    user_id, secret_id, sealed = _seal(cipher)
    with pytest.raises(CryptoError):
        EnvelopeCipher(KeyRing(1, {1: K2})).open(sealed, user_id=user_id, secret_id=secret_id)
    with pytest.raises(CryptoError, match="version 1 is not configured"):
        EnvelopeCipher(KeyRing(2, {2: K2})).open(sealed, user_id=user_id, secret_id=secret_id)


def test_reseal_moves_a_row_to_the_new_version_with_the_same_data_key() -> None:
    old = EnvelopeCipher(KeyRing(1, {1: K1}))
    both = EnvelopeCipher(KeyRing(1, {1: K1, 2: K2}))
    new_only = EnvelopeCipher(KeyRing(2, {2: K2}))
    user_id, secret_id, sealed = _seal(old)
    moved = both.reseal(sealed, user_id=user_id, secret_id=secret_id, version=2)
    assert moved.key_version == 2 and moved.nonce != sealed.nonce
    assert new_only.open(moved, user_id=user_id, secret_id=secret_id) == VALUE
    assert both.data_key_of(moved, user_id=user_id) == both.data_key_of(sealed, user_id=user_id)
    with pytest.raises(CryptoError):
        old.open(moved, user_id=user_id, secret_id=secret_id)


def test_ten_thousand_encryptions_use_unique_12_byte_nonces(cipher: EnvelopeCipher) -> None:
    user_id, secret_id = uuid.uuid4(), uuid.uuid4()
    dek = cipher.new_data_key()
    nonces = [
        cipher.seal("v", user_id=user_id, secret_id=secret_id, dek=dek).nonce for _ in range(10_000)
    ]
    assert {len(n) for n in nonces} == {12}
    assert len(set(nonces)) == 10_000


def test_failures_are_logged_without_the_value_or_key(
    cipher: EnvelopeCipher, caplog: pytest.LogCaptureFixture
) -> None:
    user_id, secret_id, sealed = _seal(cipher)
    with (
        caplog.at_level(logging.WARNING, logger="jarvis.security.crypto"),
        pytest.raises(CryptoError) as info,
    ):
        cipher.open(
            dataclasses.replace(sealed, ciphertext=_flip(sealed.ciphertext, 3)),
            user_id=user_id,
            secret_id=secret_id,
        )
    assert "could not be decrypted" in str(info.value)
    assert caplog.records, "the failure is logged"
    text = " ".join(r.getMessage() + str(vars(r)) for r in caplog.records) + str(info.value)
    assert str(secret_id) in text
    assert VALUE not in text and K1.hex() not in text and "11" * 32 not in text


def test_keyring_never_shows_keys() -> None:
    ring = KeyRing(2, {1: K1, 2: K2})
    assert K1.hex() not in repr(ring) and K2.hex() not in repr(ring)
    assert ring.versions == [1, 2]
    with pytest.raises(CryptoError):
        KeyRing(3, {1: K1})
    with pytest.raises(CryptoError):
        KeyRing(1, {1: os.urandom(16)})


def test_old_master_keys_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert parse_master_keys(f"1:{K1.hex()}, 2:{K2.hex()}") == {1: K1, 2: K2}
    for bad in ("1:abcd", f"x:{K1.hex()}", K1.hex(), f"0:{K1.hex()}", f"1:{K1.hex()},1:{K2.hex()}"):
        with pytest.raises(ValueError):
            parse_master_keys(bad)
    s = load_settings(
        env="test",
        data_dir=tmp_path,
        master_key=K2.hex(),
        master_key_version=2,
        old_master_keys=f"1:{K1.hex()}",
        jwt_secret="j" * 40,
        db_app_password="pw",
    )
    ring = KeyRing.from_settings(s)
    assert ring.current_version == 2 and ring.key(1) == K1 and ring.key(2) == K2
    with pytest.raises(ConfigError) as info:
        load_settings(env="test", data_dir=tmp_path, old_master_keys="1:" + "zz" * 32)
    assert "JARVIS_OLD_MASTER_KEYS" in str(info.value) and "zz" * 32 not in str(info.value)


def test_current_version_listed_with_another_key_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = load_settings(
        env="test",
        data_dir=tmp_path,
        master_key=K2.hex(),
        master_key_version=2,
        old_master_keys=f"2:{K1.hex()}",
        jwt_secret="j" * 40,
        db_app_password="pw",
    )
    with pytest.raises(ConfigError, match="lists version 2"):
        KeyRing.from_settings(s)


def test_a_retired_version_is_logged_and_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    user_id, secret_id, sealed = _seal(EnvelopeCipher(KeyRing(1, {1: K1})))
    with (
        caplog.at_level(logging.WARNING, logger="jarvis.security.crypto"),
        pytest.raises(CryptoError),
    ):
        EnvelopeCipher(KeyRing(2, {2: K2})).open(sealed, user_id=user_id, secret_id=secret_id)
    assert "version 1 is not configured" in caplog.text
