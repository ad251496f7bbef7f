"""``jarvis usage ...`` and ``jarvis demo seed`` (usage capability).

All go through the usage maintenance service on the owner connection
(``jarvis.bootstrap.usage_maintenance``): repricing and the demo seed write every user's rows,
so the owner must see them all (a superuser or a BYPASSRLS role; the embedded server's owner is
one). ``usage reprice`` and ``demo seed`` are background jobs like the page's "Recompute costs"
(``jarvis.cli.jobs``: followed with progress, ``--inline`` runs them here, ``--no-wait`` only
queues them), owned by the administrator the command line acts as (the oldest active one).
Before any administrator exists (a fresh install, which the demo seed gives its first admin)
there is nobody to own a job, so the work runs in the command itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from jarvis.errors import ValidationError

if TYPE_CHECKING:
    from jarvis.bootstrap import Services
    from jarvis.identity import Principal
    from jarvis.services.usage import UsageMaintenance
    from jarvis.validation import JsonValue


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


def _acting_admin(args: argparse.Namespace) -> tuple[Services, Principal | None]:
    """The services, and the administrator whose job the work becomes (None before the first
    one exists: then the command does the work itself)."""
    from jarvis.cli import _services

    services = _services(args)
    admin = services.accounts.operator()
    if admin is None:
        print("No administrator account yet: this runs here, not as a background job.")
    return services, admin


def cmd_usage_reprice(args: argparse.Namespace) -> int:
    from jarvis.bootstrap import usage_maintenance
    from jarvis.cli.jobs import finish, print_progress
    from jarvis.services.jobs import reprice_summary

    since = datetime.combine(args.since, datetime.min.time(), tzinfo=UTC)
    if since > datetime.now(UTC):
        raise ValidationError("--since is in the future.")
    services, admin = _acting_admin(args)
    try:
        if admin is None:
            with usage_maintenance(services.settings) as maintenance:
                count = maintenance.reprice(since, progress=print_progress)
            print()
            print(reprice_summary(count, args.since))
            return 0
        job = services.jobs.reprice(
            admin, args.since, here=args.inline, watch=print_progress if args.inline else None
        )
        if args.inline:
            print()
        finish(args, services, admin, job)
        return 0
    finally:
        services.shutdown()
        services.engine.dispose()


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


def _print_demo_login(result: JsonValue) -> None:
    """The demo login under the summary (the password is the demo's fixed one, never stored
    with the job)."""
    from jarvis.demo.runs import DEMO_PASSWORD

    if not isinstance(result, dict) or not isinstance(result.get("login_email"), str):
        return
    role = "an admin" if result.get("admin_created") is True else "a user"
    print(f"Demo login ({role}): {result['login_email']} / {DEMO_PASSWORD}")


def cmd_demo_seed(args: argparse.Namespace) -> int:
    from jarvis.bootstrap import usage_maintenance
    from jarvis.cli.jobs import finish, print_progress
    from jarvis.services.jobs import demo_result, demo_summary

    options: dict[str, Any] = {
        "users": args.users,
        "days": args.days,
        "runs": args.runs,
        "seed": args.seed,
        "prefix": args.prefix,
        "messages": not args.no_messages,
        "knowledge": not args.no_knowledge,
    }
    services, admin = _acting_admin(args)
    try:
        if admin is None:
            with usage_maintenance(services.settings) as maintenance:
                result = maintenance.seed_demo(**options, steps=print_progress)
            print()
            print(demo_summary(result))
            _print_demo_login(demo_result(result))
            return 0
        job = services.jobs.seed_demo(
            admin, **options, here=args.inline, watch=print_progress if args.inline else None
        )
        if args.inline:
            print()
        done = finish(args, services, admin, job)
        if done is not None:
            _print_demo_login(done.result)
        return 0
    finally:
        services.shutdown()
        services.engine.dispose()


def add_usage_commands(sub: Any) -> None:
    from jarvis.cli.jobs import add_job_options

    usage = sub.add_parser("usage", help="usage and cost").add_subparsers(
        dest="usage_command", required=True
    )
    rep = usage.add_parser("reprice", help="recompute run costs after a price change")
    rep.add_argument("--since", type=_day, required=True, help="first day (UTC), e.g. 2026-01-01")
    add_job_options(rep)
    rep.set_defaults(handler=cmd_usage_reprice)
    reb = usage.add_parser("rebuild-rollups", help="recompute the daily usage rollups")
    reb.add_argument("--since", type=_day, default=None, help="first local day (default: all)")
    reb.set_defaults(handler=cmd_usage_rebuild)
    usage.add_parser(
        "seed-prices", help="add versions from jarvis/data/model_prices.csv that are missing"
    ).set_defaults(handler=cmd_usage_seed_prices)


def add_demo_commands(sub: Any) -> None:
    from jarvis.cli.jobs import add_job_options

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
    add_job_options(seed)
    seed.set_defaults(handler=cmd_demo_seed)
