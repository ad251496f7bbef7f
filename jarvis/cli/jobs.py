"""``jarvis worker`` and ``jarvis graph import``, and following a background job's progress.

A command that starts long work (``graph import``, ``embeddings reembed``, ``usage reprice``,
``demo seed``) queues a job and follows its progress line by line until it ends (Ctrl-C stops
following, not the job); ``--inline`` runs it in the command's own process instead (no worker
needed), ``--no-wait`` only queues it. ``jarvis worker`` runs a worker in the foreground, for another machine (or
when the app runs with ``JARVIS_JOB_WORKER=off``); SIGINT / SIGTERM stop it after the jobs in
hand finish.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from jarvis.errors import JarvisError

if TYPE_CHECKING:
    from jarvis.bootstrap import Services
    from jarvis.identity import Principal
    from jarvis.services.jobs import JobView
    from jarvis.services.knowledge_graph import ImportFormat

#: How long a job may sit queued before the command says a worker is needed.
WORKER_HINT_AFTER_SECONDS = 5.0


def follow(services: Services, principal: Principal, job: JobView, *, poll: float = 0.5) -> JobView:
    """Print the job's progress until it ends; its summary on stdout, or its error as the
    command's error (exit 1). The finished job."""
    started = time.monotonic()
    hinted = False
    last = ""
    while not job.finished:
        waited = time.monotonic() - started
        if job.state == "queued" and not hinted and waited > WORKER_HINT_AFTER_SECONDS:
            hinted = True
            print(
                "\nStill queued: is `jarvis up` or `jarvis worker` running? "
                "(--inline runs it here.)",
                file=sys.stderr,
                flush=True,
            )
        line = f"\r  {job.progress_text}"
        if line != last:
            print(line.ljust(60), end="", flush=True)
            last = line
        time.sleep(poll)
        job = services.jobs.status(principal, job.id)
    if last:
        print()
    if job.state == "failed":
        raise JarvisError(job.error or "The job failed.")
    print(job.summary or "Done.")
    return job


def finish(
    args: argparse.Namespace, services: Services, principal: Principal, job: JobView
) -> JobView | None:
    """``--no-wait``: say which job was queued (None); otherwise follow it to its end."""
    if getattr(args, "no_wait", False) and not job.finished:
        print(f"Queued job {job.id}.")
        return None
    return follow(services, principal, job)


def start(args: argparse.Namespace, services: Services, principal: Principal, job: JobView) -> int:
    """``--no-wait``: say which job was queued; otherwise follow it."""
    finish(args, services, principal, job)
    return 0


def print_progress(done: int, total: int) -> None:
    """A job's progress on one terminal line (a job this command runs itself)."""
    pct = 100 * done / total if total else 100.0
    print(f"\r  {done:,} of {total:,} ({pct:.0f} %)".ljust(60), end="", flush=True)


def add_job_options(parser: argparse.ArgumentParser) -> None:
    """``--inline`` / ``--no-wait`` for a command that queues a job."""
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--inline", action="store_true", help="run in this process (no worker needed)")
    how.add_argument("--no-wait", action="store_true", help="queue the job and return")


def cmd_worker(args: argparse.Namespace) -> int:
    from jarvis.bootstrap import build_services
    from jarvis.cli import _settings_with_database

    settings, _ = _settings_with_database(args)
    services = build_services(settings, background=False, job_worker=False)
    if services.queue is None:  # pragma: no cover - only a test's shared connection has none
        raise JarvisError("No job queue is configured.")
    print("Job worker running (Ctrl-C to stop).", flush=True)
    try:
        services.queue.run_worker()
    finally:
        services.shutdown()
    print("Job worker stopped.", flush=True)
    return 0


def cmd_graph_import(args: argparse.Namespace) -> int:
    from jarvis.cli import _services

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JarvisError(f"Cannot read {path.name}: {exc.strerror or 'unreadable'}.") from exc
    services = _services(args)
    principal = services.accounts.principal_for_email(args.user)
    fmt: ImportFormat = "json" if path.suffix.lower() == ".json" else "csv"
    watch = print_progress if args.inline else None
    job = services.jobs.import_graph(principal, data, fmt, here=args.inline, watch=watch)
    if args.inline:
        print()
    return start(args, services, principal, job)


def add_job_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser(
        "worker",
        help="run a background-job worker in the foreground (imports, re-embedding, re-pricing, "
        "the demo seed)",
    ).set_defaults(handler=cmd_worker)
    graph = sub.add_parser("graph", help="knowledge graph").add_subparsers(
        dest="graph_command", required=True
    )
    imp = graph.add_parser("import", help="import a CSV or JSON file into a user's graph")
    imp.add_argument("file")
    imp.add_argument("--user", required=True, help="the account's email")
    add_job_options(imp)
    imp.set_defaults(handler=cmd_graph_import)
