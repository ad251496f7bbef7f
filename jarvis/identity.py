"""Who is acting: the signed-in user as the services see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "user"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user. Services take one and the unit of work scopes RLS to it."""

    user_id: uuid.UUID
    email: str
    role: Role = "user"
    display_name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
