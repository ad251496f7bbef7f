"""``jarvis embeddings reembed --user EMAIL --model NAME`` (memory capability).

Runs as the user (row-level security applies): the user's OpenAI key is used for the OpenAI
model. Progress is printed batch by batch; every batch is its own transaction, so an
interrupted run can simply be started again. The command only parses, calls two services
(``auth.principal_for_email``, ``memory.reembed``) and prints: no database work here.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from jarvis.llm.embedders import LEXICAL_MODEL, LOCAL_MODEL, OPENAI_MODEL

if TYPE_CHECKING:
    from jarvis.bootstrap import Services

MODEL_ALIASES = {"lexical": LEXICAL_MODEL, "local": LOCAL_MODEL, "openai": OPENAI_MODEL}


def _print_progress(done: int, total: int) -> None:
    pct = 100 * done / total if total else 100.0
    print(f"\r  {done:,}/{total:,} memories ({pct:5.1f} %)", end="", flush=True, file=sys.stdout)


def cmd_embeddings_reembed(args: argparse.Namespace) -> int:
    from jarvis.cli import _services

    services: Services = _services(args)
    principal = services.accounts.principal_for_email(args.user)
    model = MODEL_ALIASES.get(args.model, args.model)
    report = services.memory.reembed(
        principal, model, progress=_print_progress, batch_size=args.batch_size
    )
    print()
    print(
        f"Re-embedded {report.moved:,} of {report.total:,} memories of {principal.email} "
        f"with {report.model_name}."
    )
    return 0


def add_embeddings_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emb = sub.add_parser("embeddings", help="embedding maintenance").add_subparsers(
        dest="embeddings_command", required=True
    )
    re = emb.add_parser("reembed", help="move a user's memories to another embedding model")
    re.add_argument("--user", required=True, help="the account's email")
    re.add_argument(
        "--model",
        required=True,
        help="lexical | local | openai (or a full model name, e.g. " + LEXICAL_MODEL + ")",
    )
    re.add_argument("--batch-size", type=int, default=200)
    re.set_defaults(handler=cmd_embeddings_reembed)
