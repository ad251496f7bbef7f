"""Helpers for the accounts tests: create admins / users whatever else the database holds.

The session database is shared with tests that commit, so "the first user becomes admin"
cannot be relied on in a rolled-back test: an operator principal (like the CLI's) is used.
"""

from __future__ import annotations

import uuid

from jarvis.bootstrap import Services
from jarvis.identity import Principal

PW = "correct horse battery"
OPERATOR = Principal(user_id=uuid.uuid4(), email="operator@example.com", role="admin")


def make_user(
    services: Services, email: str, password: str = PW, *, role: str = "user"
) -> Principal:
    if not services.accounts.has_users():
        # The very first account becomes admin whatever was asked: use it up.
        services.accounts.register(f"first-{uuid.uuid4().hex[:8]}@example.com", PW)
    return services.accounts.register(
        email, password, email.split("@")[0], role=role, actor=OPERATOR
    )


def make_admin(services: Services, email: str, password: str = PW) -> Principal:
    return make_user(services, email, password, role="admin")
