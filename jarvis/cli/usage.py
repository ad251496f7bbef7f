"""``jarvis usage ...`` and ``jarvis demo seed`` (usage capability).

Both go through the usage maintenance service on the owner connection
(``jarvis.bootstrap.usage_maintenance``): repricing and the demo seed write every user's rows,
so the owner must see them all (a superuser or a BYPASSRLS role; the embedded server's owner is
one).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from jarvis.errors import ValidationError

if TYPE_CHECKING:
    from jarvis.services.usage import UsageMaintenance


@contextmanager
def _maintenance(args: argparse.Namespace) -> Iterator[UsageMaintenance]:
    from jarvis.bootstrap import usage_maintenance
    from jarvis.cli import _settings_with_database

    settings, _server = _settings_with_database(args)
    with usage_maintenance(settings) as maintenance:
        yield maintenance


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected a date like 2026-01-31") from exc


def cmd_usage_reprice(args: argparse.Namespace) -> int:
    since = datetime.combine(args.since, datetime.min.time(), tzinfo=UTC)
    if since > datetime.now(UTC):
        raise ValidationError("--since is in the future.")
    with _maintenance(args) as maintenance:
        count = maintenance.reprice(since)
    print(f"Repriced {count:,} runs started since {args.since.isoformat()} (UTC); rollups rebuilt.")
    return 0


def cmd_usage_rebuild(args: argparse.Namespace) -> int:
    with _maintenance(args) as maintenance:
        maintenance.rebuild_rollups(args.since)
    print("Usage rollups rebuilt from the runs.")
    return 0


def cmd_usage_seed_prices(args: argparse.Namespace) -> int:
    with _maintenance(args) as maintenance:
        added = maintenance.seed_prices()
    print(f"Added {added} price versions from the package price file (existing ones kept).")
    return 0


def cmd_demo_seed(args: argparse.Namespace) -> int:
    with _maintenance(args) as maintenance:
        result = maintenance.seed_demo(
            users=args.users,
            days=args.days,
            runs=args.runs,
            seed=args.seed,
            prefix=args.prefix,
            messages=not args.no_messages,
            knowledge=not args.no_knowledge,
            progress=lambda msg: print(f"  {msg}", flush=True),
        )
    print(
        f"Seeded {result.users:,} users, {result.conversations:,} conversations, "
        f"{result.runs:,} runs, {result.messages:,} messages, {result.tool_calls:,} tool calls "
        f"in {result.seconds:.1f} s."
    )
    if result.knowledge:
        print(f"Knowledge: {result.knowledge}")
    role = "an admin" if result.admin_created else "a user"
    print(f"Demo login ({role}): {result.login_email} / {result.password}")
    return 0


def add_usage_commands(sub: Any) -> None:
    usage = sub.add_parser("usage", help="usage and cost").add_subparsers(
        dest="usage_command", required=True
    )
    rep = usage.add_parser("reprice", help="recompute run costs after a price change")
    rep.add_argument("--since", type=_day, required=True, help="first day (UTC), e.g. 2026-01-01")
    rep.set_defaults(handler=cmd_usage_reprice)
    reb = usage.add_parser("rebuild-rollups", help="recompute the daily usage rollups")
    reb.add_argument("--since", type=_day, default=None, help="first local day (default: all)")
    reb.set_defaults(handler=cmd_usage_rebuild)
    usage.add_parser(
        "seed-prices", help="add versions from jarvis/data/model_prices.csv that are missing"
    ).set_defaults(handler=cmd_usage_seed_prices)


def add_demo_commands(sub: Any) -> None:
    demo = sub.add_parser("demo", help="demo data").add_subparsers(
        dest="demo_command", required=True
    )
    seed = demo.add_parser("seed", help="create demo users with 90 days of runs (COPY speed)")
    seed.add_argument("--users", type=int, default=20)
    seed.add_argument("--days", type=int, default=90)
    seed.add_argument("--runs", type=int, default=20_000)
    seed.add_argument("--seed", type=int, default=42, help="random seed (reproducible data)")
    seed.add_argument("--prefix", default="demo", help="emails are PREFIX-1@example.com ...")
    seed.add_argument("--no-messages", action="store_true", help="skip chat messages")
    seed.add_argument(
        "--no-knowledge", action="store_true", help="skip the knowledge graph and memories"
    )
    seed.set_defaults(handler=cmd_demo_seed)
