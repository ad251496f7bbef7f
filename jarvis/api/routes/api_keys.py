"""Personal API keys: create (shown once), list, revoke."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from jarvis.api.deps import CurrentUser, ServicesDep
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.services.api_keys import ApiKeyView

router = APIRouter(prefix="/api-keys", tags=["api keys"], responses=PROBLEM_RESPONSES)


class ApiKey(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, k: ApiKeyView) -> ApiKey:
        return cls(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            created_at=k.created_at,
            expires_at=k.expires_at,
            last_used_at=k.last_used_at,
            revoked_at=k.revoked_at,
        )


class NewApiKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class CreatedApiKey(ApiKey):
    key: str = Field(description="The key itself: shown this once, never again.")


@router.get("", response_model=list[ApiKey])
def list_keys(user: CurrentUser, services: ServicesDep) -> list[ApiKey]:
    return [ApiKey.of(k) for k in services.api_keys.list(user)]


@router.post("", response_model=CreatedApiKey, status_code=status.HTTP_201_CREATED)
def create_key(body: NewApiKey, user: CurrentUser, services: ServicesDep) -> CreatedApiKey:
    created = services.api_keys.create(user, body.name, expires_in_days=body.expires_in_days)
    return CreatedApiKey(**ApiKey.of(created.key).model_dump(), key=created.secret)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(key_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> None:
    services.api_keys.revoke(user, key_id)
