"""Access tokens refuse every forgery and every malformed input with TokenError (never a crash)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import jwt
import pytest

from jarvis.clock import FixedClock
from jarvis.errors import ConfigError, TokenError
from jarvis.identity import Principal
from jarvis.security.tokens import (
    REQUIRED_CLAIMS,
    AccessTokenCodec,
    check_refresh_token_shape,
    hash_refresh_token,
    new_refresh_token,
)

KEY = "unit-test-jwt-secret-" + "k" * 60  # long enough for PyJWT to sign HS512 with it
ISS = "jarvis"
AUD = "jarvis-app"
USER = Principal(user_id=uuid.uuid4(), email="ada@example.com", role="user")
SESSION = uuid.uuid4()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def codec(clock: FixedClock) -> AccessTokenCodec:
    return AccessTokenCodec(KEY, issuer=ISS, audience=AUD, ttl_seconds=900, clock=clock)


def claims(clock: FixedClock, **changes: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    payload: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": str(USER.user_id),
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "sid": str(SESSION),
        "role": "user",
    }
    for name, value in changes.items():
        if value is ...:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    return (
        b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode()) + "." + signature
    )


def signed(payload: dict[str, Any], key: str = KEY, alg: str = "HS256") -> str:
    """Sign by hand (PyJWT refuses to *create* some malformed tokens we must refuse)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    sig = hmac.new(key.encode(), f"{head}.{body}".encode(), digest).digest()
    return f"{head}.{body}.{b64(sig)}"


def test_hand_signed_genuine_token_is_accepted(codec: AccessTokenCodec, clock: FixedClock) -> None:
    # Proves the helper signs like PyJWT: the refusals below are about the content.
    assert codec.decode(signed(claims(clock))).user_id == USER.user_id


def test_a_genuine_token_round_trips(codec: AccessTokenCodec) -> None:
    token = codec.issue(USER, session_id=SESSION)
    got = codec.decode(token)
    assert got.user_id == USER.user_id
    assert got.session_id == SESSION
    assert got.role == "user"
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(REQUIRED_CLAIMS) <= set(payload)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_unsigned_alg_none_tokens_are_refused(
    codec: AccessTokenCodec, clock: FixedClock, alg: str
) -> None:
    token = unsigned({"alg": alg, "typ": "JWT"}, claims(clock))
    with pytest.raises(TokenError):
        codec.decode(token)
    # ...also when a signature-looking tail is attached.
    with pytest.raises(TokenError):
        codec.decode(token + "c2lnbmF0dXJl")


def test_header_without_alg_is_refused(codec: AccessTokenCodec, clock: FixedClock) -> None:
    with pytest.raises(TokenError):
        codec.decode(unsigned({"typ": "JWT"}, claims(clock), "abc"))


@pytest.mark.parametrize("alg", ["HS512", "HS384"])
def test_other_hmac_algorithms_with_the_right_key_are_refused(
    codec: AccessTokenCodec, clock: FixedClock, alg: str
) -> None:
    token = jwt.encode(claims(clock), KEY, algorithm=alg)
    with pytest.raises(TokenError):
        codec.decode(token)
    with pytest.raises(TokenError):
        codec.decode(signed(claims(clock), alg=alg))


def test_a_flipped_payload_byte_breaks_the_signature(codec: AccessTokenCodec) -> None:
    token = codec.issue(USER, session_id=SESSION)
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # Turn the role into "admin"-like garbage by flipping one byte of the JSON.
    raw[len(raw) // 2] ^= 0x01
    forged = header + "." + b64(bytes(raw)) + "." + signature
    with pytest.raises(TokenError):
        codec.decode(forged)


def test_privilege_escalation_by_re_encoding_the_payload_fails(
    codec: AccessTokenCodec, clock: FixedClock
) -> None:
    token = codec.issue(USER, session_id=SESSION)
    header, _payload, signature = token.split(".")
    forged = header + "." + b64(json.dumps(claims(clock, role="admin")).encode()) + "." + signature
    with pytest.raises(TokenError):
        codec.decode(forged)


def test_a_token_signed_with_another_key_is_refused(
    codec: AccessTokenCodec, clock: FixedClock
) -> None:
    token = jwt.encode(claims(clock), "another-secret-" + "z" * 40, algorithm="HS256")
    with pytest.raises(TokenError):
        codec.decode(token)


@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
def test_each_missing_required_claim_is_refused(
    codec: AccessTokenCodec, clock: FixedClock, missing: str
) -> None:
    token = jwt.encode(claims(clock, **{missing: ...}), KEY, algorithm="HS256")
    with pytest.raises(TokenError):
        codec.decode(token)


def test_expiry_is_enforced_beyond_the_leeway_only(
    codec: AccessTokenCodec, clock: FixedClock
) -> None:
    token = codec.issue(USER, session_id=SESSION)
    clock.advance(seconds=900 + 5)  # within the 10 s leeway
    assert codec.decode(token).user_id == USER.user_id
    clock.advance(seconds=10)
    with pytest.raises(TokenError):
        codec.decode(token)


def test_tokens_from_the_future_are_refused_beyond_the_leeway(
    codec: AccessTokenCodec, clock: FixedClock
) -> None:
    now = int(clock.now().timestamp())
    soon = jwt.encode(claims(clock, iat=now + 5), KEY, algorithm="HS256")
    assert codec.decode(soon).user_id == USER.user_id
    later = jwt.encode(claims(clock, iat=now + 120, exp=now + 1000), KEY, algorithm="HS256")
    with pytest.raises(TokenError):
        codec.decode(later)
    nbf = jwt.encode(claims(clock, nbf=now + 120), KEY, algorithm="HS256")
    with pytest.raises(TokenError):
        codec.decode(nbf)


@pytest.mark.parametrize(
    "issuer", ["jarv", "jarvis-evil", "xjarvis", "", ["jarvis"], "JARVIS", "jarvis "]
)
def test_issuer_must_match_exactly(codec: AccessTokenCodec, clock: FixedClock, issuer: Any) -> None:
    token = signed(claims(clock, iss=issuer))
    with pytest.raises(TokenError):
        codec.decode(token)


@pytest.mark.parametrize("audience", ["other-app", "jarvis", "", ["other", "x"], "jarvis-app2"])
def test_audience_must_match_exactly(
    codec: AccessTokenCodec, clock: FixedClock, audience: Any
) -> None:
    token = signed(claims(clock, aud=audience))
    with pytest.raises(TokenError):
        codec.decode(token)


@pytest.mark.parametrize("typ", ["refresh", "Access", "", None, 1])
def test_only_access_typed_tokens_are_accepted(
    codec: AccessTokenCodec, clock: FixedClock, typ: Any
) -> None:
    token = signed(claims(clock, typ=typ))
    with pytest.raises(TokenError):
        codec.decode(token)


def test_a_refresh_token_is_not_an_access_token(codec: AccessTokenCodec) -> None:
    with pytest.raises(TokenError):
        codec.decode(new_refresh_token())


def test_an_access_token_is_not_a_refresh_token(codec: AccessTokenCodec) -> None:
    with pytest.raises(TokenError):
        check_refresh_token_shape(codec.issue(USER, session_id=SESSION))


def test_a_10_kb_token_is_refused_before_decoding(
    codec: AccessTokenCodec, clock: FixedClock
) -> None:
    big = jwt.encode(claims(clock, pad="x" * 10_000), KEY, algorithm="HS256")
    assert len(big) > 10_000
    with pytest.raises(TokenError):
        codec.decode(big)
    with pytest.raises(TokenError):
        codec.decode("a" * 10_240)
    with pytest.raises(TokenError):
        check_refresh_token_shape("a" * 10_240)


@pytest.mark.parametrize(
    "exp", ["tomorrow", "1700000000", None, 1.5e300, [1], {"a": 1}, True, float("nan")]
)
def test_garbage_exp_is_refused(codec: AccessTokenCodec, clock: FixedClock, exp: Any) -> None:
    token = signed(claims(clock, exp=exp))  # json.dumps writes NaN as a bare NaN
    with pytest.raises(TokenError):
        codec.decode(token)


@pytest.mark.parametrize("sub", ["not-a-uuid", 42, "", None])
def test_garbage_subject_is_refused(codec: AccessTokenCodec, clock: FixedClock, sub: Any) -> None:
    token = signed(claims(clock, sub=sub))
    with pytest.raises(TokenError):
        codec.decode(token)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "abc",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9..",
        "\x00\x01\x02",
        "ünïcödé.tøkén.✓",
        None,
        12345,
        b"bytes.are.not",
    ],
)
def test_junk_never_crashes(codec: AccessTokenCodec, junk: Any) -> None:
    with pytest.raises(TokenError):
        codec.decode(junk)


def test_short_keys_are_refused(clock: FixedClock) -> None:
    with pytest.raises(ConfigError):
        AccessTokenCodec("short", issuer=ISS, audience=AUD, ttl_seconds=900, clock=clock)


def test_refresh_tokens_are_long_random_and_only_hashed(
    codec: AccessTokenCodec,
) -> None:
    tokens = {new_refresh_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in list(tokens)[:5]:
        assert len(token) == 43  # 32 random bytes = 256 bits
        assert check_refresh_token_shape(token) == token
        digest = hash_refresh_token(token)
        assert len(digest) == 64 and token not in digest


def test_refresh_shape_check_is_exact() -> None:
    token = new_refresh_token()
    for bad in (token + "\n", " " + token, token[:-1], token + "A", token.replace(token[0], "+")):
        with pytest.raises(TokenError):
            check_refresh_token_shape(bad)
