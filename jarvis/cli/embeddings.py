"""``jarvis embeddings reembed | catch-up`` and ``jarvis memory index`` (memory capability).

``reembed`` queues a background job that runs as the user (row-level security applies: the
user's OpenAI key is used for the OpenAI model) and follows its progress (``--inline`` runs it
here). ``catch-up`` (also run by ``jarvis db upgrade`` and ``jarvis up``) moves the
users who follow the instance default but still have rows of another model (after the default
changed, e.g. from lexical hashing to wordllama); ``memory index`` builds heavy users' own HNSW
indexes. Progress is printed batch by batch; every batch is its own transaction, so an
interrupted run can simply be started again. The commands only parse, call services and print.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from jarvis.llm.embedders import MODEL_ALIASES, WORDLLAMA_MODEL, canonical_model

if TYPE_CHECKING:
    from jarvis.bootstrap import Services
    from jarvis.config import Settings


def _print_progress(done: int, total: int) -> None:
    pct = 100 * done / total if total else 100.0
    print(
        f"\r  {done:,}/{total:,} memories and graph entities ({pct:5.1f} %)",
        end="",
        flush=True,
        file=sys.stdout,
    )


def cmd_embeddings_reembed(args: argparse.Namespace) -> int:
    from jarvis.cli import _services
    from jarvis.cli.jobs import print_progress, start

    services: Services = _services(args)
    principal = services.accounts.principal_for_email(args.user)
    model = canonical_model(args.model)
    job = services.jobs.reembed(
        principal,
        model,
        batch_size=args.batch_size,
        here=args.inline,
        watch=print_progress if args.inline else None,
    )
    if args.inline:
        print()
    return start(args, services, principal, job)


def catch_up(settings: Settings) -> None:
    """Move the users left on another model than the instance default (prints progress;
    nothing when there is nothing to do)."""
    from jarvis.bootstrap import memory_maintenance

    shown: set[str] = set()

    def progress(email: str, done: int, total: int) -> None:
        if email not in shown:
            shown.add(email)
            print(f"\nRe-embedding the memories and graph of {email}:", flush=True)
        _print_progress(done, total)

    with memory_maintenance(settings) as maintenance:
        report = maintenance.embeddings.catch_up(progress=progress)
    if report.users:
        print()
        print(
            f"Moved {report.users:,} user(s), {report.rows:,} rows, to {report.model_name}.",
            flush=True,
        )


def cmd_embeddings_catch_up(args: argparse.Namespace) -> int:
    from jarvis.cli import _settings_with_database

    settings, _ = _settings_with_database(args)
    catch_up(settings)
    print("Every user who follows the default embedder is on it.")
    return 0


def cmd_memory_index(args: argparse.Namespace) -> int:
    from jarvis.bootstrap import memory_maintenance
    from jarvis.cli import _settings_with_database

    settings, _ = _settings_with_database(args)
    with memory_maintenance(settings) as maintenance:
        report = maintenance.indexes.reconcile(
            min_rows=args.min_rows, progress=lambda m: print(m, flush=True)
        )
    print(
        f"Per-user HNSW indexes: {len(report.created)} built, {len(report.dropped)} dropped, "
        f"{len(report.kept)} kept."
    )
    return 0


def add_embeddings_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from jarvis.cli.jobs import add_job_options
    from jarvis.services.memory import ANN_MIN_ROWS

    emb = sub.add_parser("embeddings", help="embedding maintenance").add_subparsers(
        dest="embeddings_command", required=True
    )
    re = emb.add_parser(
        "reembed", help="move a user's memories and graph entities to another embedding model"
    )
    re.add_argument("--user", required=True, help="the account's email")
    re.add_argument(
        "--model",
        required=True,
        help=" | ".join(MODEL_ALIASES) + " (or a full model name, e.g. " + WORDLLAMA_MODEL + ")",
    )
    re.add_argument("--batch-size", type=int, default=200)
    add_job_options(re)
    re.set_defaults(handler=cmd_embeddings_reembed)
    emb.add_parser(
        "catch-up",
        help="re-embed the rows of users who follow the default model (run by `db upgrade`)",
    ).set_defaults(handler=cmd_embeddings_catch_up)

    mem = sub.add_parser("memory", help="memory maintenance").add_subparsers(
        dest="memory_command", required=True
    )
    index = mem.add_parser(
        "index", help="build (or drop) the own HNSW index of users with very many memories"
    )
    index.add_argument(
        "--min-rows",
        type=int,
        default=ANN_MIN_ROWS,
        help=f"memories of one model that earn an index (default {ANN_MIN_ROWS:,})",
    )
    index.set_defaults(handler=cmd_memory_index)
