"""What the secrets service hands out: listings without values, and a value for one use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SecretView:
    """A secret as listings show it: never the value."""

    id: uuid.UUID
    provider: str
    name: str
    last4: str
    base_url: str | None
    key_version: int
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None

    @property
    def masked(self) -> str:
        """``••••abcd`` (or just dots when the value is too short to show any of it)."""
        return "••••" + self.last4


@dataclass(frozen=True, slots=True, repr=False)
class RevealedSecret:
    """A decrypted value for one use. ``repr``/``str`` never show it."""

    value: str
    base_url: str | None = None

    def __repr__(self) -> str:
        return f"RevealedSecret(value='****', base_url={self.base_url!r})"

    __str__ = __repr__
