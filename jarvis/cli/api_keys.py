"""``jarvis api-keys create|list|revoke EMAIL ...``: personal API keys made by an operator for
a person (the Account page does the same for oneself).

``create`` prints the key alone on stdout (``KEY=$(jarvis api-keys create ...)`` works) and
the note that it is shown only this once on stderr; Jarvis keeps only its hash.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jarvis.bootstrap import Services
    from jarvis.identity import Principal
    from jarvis.services.api_keys import ApiKeyView


def _person(args: argparse.Namespace) -> tuple[Services, Principal]:
    from jarvis.cli import _services

    services = _services(args)
    return services, services.accounts.principal_for_email(args.email)


def _when(value: datetime | None, empty: str = "never") -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else empty


def _state(key: ApiKeyView, now: datetime) -> str:
    if not key.active:
        return "revoked"
    return "expired" if key.expired(now) else "active"


def _key_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            "expected a key id as `jarvis api-keys list` shows"
        ) from exc


def cmd_create(args: argparse.Namespace) -> int:
    services, person = _person(args)
    created = services.api_keys.create(person, args.name, expires_in_days=args.expires_days)
    key = created.key
    expiry = f"expires {_when(key.expires_at)}" if key.expires_at else "does not expire"
    print(
        f"Created API key {key.name!r} ({key.prefix}) for {person.email}; it {expiry}.",
        file=sys.stderr,
    )
    print(created.secret, flush=True)
    print(
        "This key is shown only this once: copy it now (Jarvis keeps only its hash). "
        "Use it as `Authorization: Bearer <key>`.",
        file=sys.stderr,
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    services, person = _person(args)
    keys = services.api_keys.list(person)
    if not keys:
        print(f"{person.email} has no API keys.")
        return 0
    now = services.clock.now()
    print("id\tname\tprefix\tcreated\tlast used\texpires\tstate")
    for k in keys:
        print(
            f"{k.id}\t{k.name}\t{k.prefix}\t{_when(k.created_at)}\t{_when(k.last_used_at)}\t"
            f"{_when(k.expires_at)}\t{_state(k, now)}"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    services, person = _person(args)
    services.api_keys.revoke(person, args.key_id)
    print(f"Revoked API key {args.key_id} of {person.email}: it stops working at once.")
    return 0


def add_api_keys_commands(sub: Any) -> None:
    keys = sub.add_parser("api-keys", help="personal API keys of a person").add_subparsers(
        dest="api_keys_command", required=True
    )
    create = keys.add_parser("create", help="make a key (printed once) for EMAIL")
    create.add_argument("email")
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'laptop'")
    create.add_argument(
        "--expires-days", type=int, default=None, help="days until it expires (default: never)"
    )
    create.set_defaults(handler=cmd_create)
    listing = keys.add_parser("list", help="EMAIL's keys (never the keys themselves)")
    listing.add_argument("email")
    listing.set_defaults(handler=cmd_list)
    revoke = keys.add_parser("revoke", help="stop one of EMAIL's keys working")
    revoke.add_argument("email")
    revoke.add_argument("key_id", type=_key_id)
    revoke.set_defaults(handler=cmd_revoke)
