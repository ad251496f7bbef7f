"""Access tokens (JWT, HS256 pinned) and opaque refresh tokens.

Access tokens: PyJWT, the algorithm comes from the settings and never from the token header;
``exp iat sub iss aud jti typ`` are required, issuer and audience must match exactly, the
size is capped before anything is decoded, and time is read from the injected clock (with a
small leeway) so tests can move it. Anything wrong raises :class:`jarvis.errors.TokenError`.

Refresh tokens: 256 random bits (``secrets.token_urlsafe(32)``); only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from jarvis.clock import Clock
from jarvis.config import MIN_JWT_SECRET_BYTES
from jarvis.errors import ConfigError, TokenError
from jarvis.identity import Principal

ACCESS_TYPE = "access"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud", "jti", "typ")
#: A real access token is ~450 bytes; anything far larger is refused before decoding.
MAX_TOKEN_BYTES = 4096
DEFAULT_LEEWAY_SECONDS = 10
_REFRESH_RE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The checked content of an access token."""

    user_id: uuid.UUID
    session_id: uuid.UUID | None
    role: str
    jti: str
    issued_at: datetime
    expires_at: datetime


class AccessTokenCodec:
    """Issues and checks access tokens with one pinned algorithm and one key."""

    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        clock: Clock,
        algorithm: str = "HS256",
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
    ) -> None:
        if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(f"JARVIS_JWT_SECRET: expected at least {MIN_JWT_SECRET_BYTES} bytes.")
        if algorithm != "HS256":
            raise ConfigError("JARVIS_JWT_ALGORITHM: only HS256 is supported.")
        self._key = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        self._clock = clock
        self._algorithm = algorithm
        self._leeway = leeway_seconds

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def issue(self, principal: Principal, *, session_id: uuid.UUID | None = None) -> str:
        """A signed access token for ``principal`` (``sid`` names the server-side session)."""
        now = int(self._clock.now().timestamp())
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(principal.user_id),
            "iat": now,
            "exp": now + self._ttl,
            "jti": uuid.uuid4().hex,
            "typ": ACCESS_TYPE,
            "role": principal.role,
        }
        if session_id is not None:
            payload["sid"] = str(session_id)
        return jwt.encode(payload, self._key, algorithm=self._algorithm)

    def decode(self, token: object) -> AccessClaims:
        """Check ``token`` completely; raise :class:`TokenError` for anything wrong."""
        if not isinstance(token, str) or not token:
            raise TokenError()
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError()
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != self._algorithm:
                raise TokenError()
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_signature": True,
                    # Time is checked below against the injected clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
            return self._check_claims(payload)
        except TokenError:
            raise
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError) as exc:
            raise TokenError() from exc

    def _check_claims(self, payload: dict[str, Any]) -> AccessClaims:
        # Exact string equality: no substring, no list, no prefix matches.
        if not isinstance(payload.get("iss"), str) or payload["iss"] != self._issuer:
            raise TokenError()
        if not isinstance(payload.get("aud"), str) or payload["aud"] != self._audience:
            raise TokenError()
        if payload.get("typ") != ACCESS_TYPE:
            raise TokenError()
        exp, iat = payload.get("exp"), payload.get("iat")
        for value in (exp, iat):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TokenError()
        assert isinstance(exp, int) and isinstance(iat, int)
        now = self._clock.now().timestamp()
        if exp <= now - self._leeway:
            raise TokenError()
        if iat > now + self._leeway:
            raise TokenError()
        if "nbf" in payload:
            nbf = payload["nbf"]
            if not isinstance(nbf, int) or isinstance(nbf, bool) or nbf > now + self._leeway:
                raise TokenError()
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti:
            raise TokenError()
        sub = payload.get("sub")
        if not isinstance(sub, str):
            raise TokenError()
        user_id = uuid.UUID(sub)
        sid = payload.get("sid")
        session_id = uuid.UUID(sid) if isinstance(sid, str) else None
        if sid is not None and session_id is None:
            raise TokenError()
        role = payload.get("role", "user")
        if role not in ("admin", "user"):
            raise TokenError()
        return AccessClaims(
            user_id=user_id,
            session_id=session_id,
            role=role,
            jti=jti,
            issued_at=datetime.fromtimestamp(iat, UTC),
            expires_at=datetime.fromtimestamp(exp, UTC),
        )


def new_refresh_token() -> str:
    """A new opaque refresh token: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """The SHA-256 (hex) stored in place of a refresh token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def check_refresh_token_shape(token: object) -> str:
    """Refuse anything that cannot be one of our refresh tokens (a JWT, 10 KB of junk...)."""
    if not isinstance(token, str) or not _REFRESH_RE.fullmatch(token):
        raise TokenError()
    return token
