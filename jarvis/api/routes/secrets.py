"""The caller's provider API keys (the seed's ``/secrets``): write-only values.

A value goes in with ``POST`` (create) or ``PATCH`` (replace) and never comes out: every answer
shows the provider, the name, the last four characters (``hint``: ``••••abcd``; nothing for
values under 12 characters) and the dates. Another user's secret id is a 404, like one that
does not exist.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from jarvis.api.deps import CurrentUser, ServicesDep
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.services.secrets import PROVIDERS, SecretView

router = APIRouter(prefix="/secrets", tags=["secrets"], responses=PROBLEM_RESPONSES)

_PROVIDER_DOC = "One of: " + ", ".join(PROVIDERS) + "."
_BASE_URL_DOC = "Server base URL, for openai_compatible (required) and custom (optional)."


class Secret(BaseModel):
    """A secret as the API shows it: never its value."""

    id: uuid.UUID
    provider: str = Field(description=_PROVIDER_DOC)
    name: str
    last4: str = Field(description="Last four characters of the value ('' under 12 characters).")
    hint: str = Field(description="The masked value as pages show it, e.g. ••••abcd.")
    base_url: str | None
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None = Field(description="When a run last used it.")

    @classmethod
    def of(cls, s: SecretView) -> Secret:
        return cls(
            id=s.id,
            provider=s.provider,
            name=s.name,
            last4=s.last4,
            hint=s.masked,
            base_url=s.base_url,
            created_at=s.created_at,
            updated_at=s.updated_at,
            last_used_at=s.last_used_at,
        )


class NewSecret(BaseModel):
    provider: str = Field(max_length=32, description=_PROVIDER_DOC, examples=["openai"])
    name: str | None = Field(
        None, max_length=200, description='Defaults to "default" (one name per provider).'
    )
    value: SecretStr = Field(
        min_length=1, max_length=10_000, description="The key itself (write-only)."
    )
    base_url: str | None = Field(None, max_length=1000, description=_BASE_URL_DOC)


class SecretChange(BaseModel):
    """Any of: a new value, a new name, a new base URL (at least one)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    value: SecretStr | None = Field(
        None, min_length=1, max_length=10_000, description="A new value (write-only)."
    )
    name: str | None = Field(None, max_length=200)
    base_url: str | None = Field(None, max_length=1000, description=_BASE_URL_DOC)


def _value(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


@router.get("", response_model=list[Secret])
def list_secrets(user: CurrentUser, services: ServicesDep) -> list[Secret]:
    """Your secrets by provider and name: metadata only, never a value."""
    return [Secret.of(s) for s in services.secrets.list(user)]


@router.post("", response_model=Secret, status_code=status.HTTP_201_CREATED)
def create_secret(body: NewSecret, user: CurrentUser, services: ServicesDep) -> Secret:
    """Encrypt and save a key (the value is checked against the provider's key format)."""
    return Secret.of(
        services.secrets.create(
            user, body.provider, body.name, body.value.get_secret_value(), base_url=body.base_url
        )
    )


@router.get("/{secret_id}", response_model=Secret)
def get_secret(secret_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> Secret:
    return Secret.of(services.secrets.get(user, secret_id))


@router.patch("/{secret_id}", response_model=Secret)
@router.put("/{secret_id}", response_model=Secret, summary="Update Secret (same as PATCH)")
def update_secret(
    secret_id: uuid.UUID, body: SecretChange, user: CurrentUser, services: ServicesDep
) -> Secret:
    """Replace the value and / or rename (and change the base URL); omitted fields stay."""
    return Secret.of(
        services.secrets.update(
            user, secret_id, _value(body.value), name=body.name, base_url=body.base_url
        )
    )


@router.delete("/{secret_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_secret(secret_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> None:
    services.secrets.delete(user, secret_id)
