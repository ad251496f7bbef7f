"""Sign-up, sign-in, token refresh and sign-out for API clients (the seed's ``/auth``).

``login`` and ``register`` return a short-lived access JWT and an opaque refresh token; the
refresh token is rotated on every ``/auth/refresh`` and presenting a rotated one again revokes
the whole session. The pages keep their own session (a cookie); these are for API clients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, status
from pydantic import BaseModel, Field

from jarvis.api.deps import ClientIp, CurrentUser, ServicesDep
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.errors import ValidationError
from jarvis.identity import Principal
from jarvis.services.auth import IssuedSession

router = APIRouter(prefix="/auth", tags=["auth"], responses=PROBLEM_RESPONSES)


class LoginRequest(BaseModel):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(max_length=1024)


class RegisterRequest(LoginRequest):
    display_name: str = Field("", max_length=100)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=512)


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    role: str

    @classmethod
    def of(cls, p: Principal) -> UserOut:
        return cls(id=str(p.user_id), email=p.email, display_name=p.display_name, role=p.role)


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    session_id: str
    user: UserOut

    @classmethod
    def of(cls, issued: IssuedSession) -> TokenPair:
        return cls(
            access_token=issued.access_token,
            expires_at=issued.access_expires_at,
            refresh_token=issued.refresh_token,
            refresh_expires_at=issued.refresh_expires_at,
            session_id=str(issued.session_id),
            user=UserOut.of(issued.principal),
        )


UserAgent = Annotated[str | None, Header(include_in_schema=False)]


@router.post("/register", response_model=TokenPair, status_code=status.HTTP_201_CREATED)
def register(
    body: RegisterRequest, services: ServicesDep, ip: ClientIp, user_agent: UserAgent = None
) -> TokenPair:
    """Create an account (the first one is the admin; later ones while sign-up is open)."""
    return TokenPair.of(
        services.accounts.register_and_sign_in(
            body.email, body.password, body.display_name, ip=ip, user_agent=user_agent
        )
    )


@router.post("/login", response_model=TokenPair)
def login(
    body: LoginRequest, services: ServicesDep, ip: ClientIp, user_agent: UserAgent = None
) -> TokenPair:
    """Sign in with email and password."""
    return TokenPair.of(
        services.sign_in.login(body.email, body.password, ip=ip, user_agent=user_agent)
    )


@router.post("/refresh", response_model=TokenPair)
def refresh(
    body: RefreshRequest, services: ServicesDep, ip: ClientIp, user_agent: UserAgent = None
) -> TokenPair:
    """A new token pair for a refresh token, which stops working: keep the new one. Presenting
    a replaced refresh token again ends the whole session (someone else has a copy)."""
    return TokenPair.of(services.sessions.refresh(body.refresh_token, ip=ip, user_agent=user_agent))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    services: ServicesDep,
    ip: ClientIp,
    _user: CurrentUser,
    authorization: Annotated[str, Header(include_in_schema=False)],
) -> None:
    """End this access token's session (its refresh token stops working at once). An API key
    has no session: revoke it with ``DELETE /api-keys/{id}``."""
    token = authorization.split(" ", 1)[-1].strip()
    if token.startswith(services.api_keys.prefix):
        raise ValidationError(
            "An API key has no session to sign out of: revoke it with DELETE /api-keys/{id}.",
            field="authorization",
        )
    services.sessions.logout_access_token(token, ip=ip)


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    """Who the token or key acts as."""
    return UserOut.of(user)
