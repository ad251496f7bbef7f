"""The ``jarvis`` command.

``up``, ``db`` and ``users`` live here; the other command groups in this package's modules
(``secrets``, ``usage`` + ``demo``, ``embeddings``, ``api-keys``, ``worker`` + ``graph``). Commands do their work through services
(``build_services``), never with the database directly.

Every error is one clear line on stderr and a non-zero exit: a Jarvis error's own message, for
anything else a generic line naming the exception type (its message may hold a host or a path).
``JARVIS_DEBUG=1`` adds the full traceback.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from jarvis.config import Settings, get_settings
from jarvis.errors import DatabaseUnavailableError, JarvisError
from jarvis.logs import RedactionFilter

if TYPE_CHECKING:
    from jarvis.bootstrap import Services
    from jarvis.db.embedded import EmbeddedPostgres

Handler = Callable[[argparse.Namespace], int]
#: Read from the environment, not Settings: it must work when the settings themselves fail.
DEBUG_ENV = "JARVIS_DEBUG"


def _settings_with_database(
    args: argparse.Namespace,  # noqa: ARG001
) -> tuple[Settings, EmbeddedPostgres | None]:
    """Settings whose DATABASE_URL points at a running server (starting the embedded one)."""
    settings = get_settings()
    server = None
    if settings.database_url is None:
        from jarvis.db.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(settings.data_dir)
        url = server.start()
        settings = settings.model_copy(update={"database_url": url, "embedded_database": True})
    return settings, server


def _services(args: argparse.Namespace) -> Services:
    from jarvis.bootstrap import build_services

    settings, _server = _settings_with_database(args)
    return build_services(settings, background=False)


def read_password(prompt: str = "Password: ") -> str:
    """Read a password from stdin (a pipe) or the terminal, never from the command line."""
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        second = getpass.getpass("Repeat password: ")
        if first != second:
            raise JarvisError("The passwords do not match.")
        return first
    return sys.stdin.readline().rstrip("\r\n")


# -- db ----------------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from jarvis.db.migrate import upgrade

    settings, _ = _settings_with_database(args)
    if args.owner_url:
        settings = settings.model_copy(update={"database_url": args.owner_url})
    upgrade(settings, args.revision)
    print(f"Database migrated to {args.revision}.")
    if args.revision == "heads":
        from jarvis.cli.embeddings import catch_up

        catch_up(settings)
    return 0


def cmd_db_purge(args: argparse.Namespace) -> int:
    services = _services(args)
    removed = services.sign_in.purge_expired_state()
    print(f"Removed {removed} expired sign-in row(s) (throttling, ended sessions' tokens).")
    return 0


# -- users -------------------------------------------------------------------------------------


def cmd_users_add(args: argparse.Namespace) -> int:
    services = _services(args)
    password = read_password()
    principal = services.accounts.register(
        args.email,
        password,
        args.name or "",
        role="admin" if args.admin else "user",
        actor=services.accounts.operator(),
    )
    print(f"Created {principal.role} {principal.email}.")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    services = _services(args)
    admin = services.accounts.operator()
    if admin is None:
        print("No users yet. Create the first with: jarvis users add EMAIL --admin")
        return 0
    for user in services.accounts.list_users(admin):
        print(f"{user.email}\t{user.role}\t{user.display_name}")
    return 0


# -- up ----------------------------------------------------------------------------------------


def _raise_keyboard_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_up(args: argparse.Namespace) -> int:
    """Start the embedded database if needed, migrate, serve the UI and the API (uvicorn);
    Ctrl-C or SIGTERM stops both."""
    from jarvis.cli.embeddings import catch_up
    from jarvis.db.migrate import upgrade

    settings, server = _settings_with_database(args)
    upgrade(settings)
    catch_up(settings)  # users left on the previous default embedder (offline, resumable)
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.owner_url()
    if server is not None:
        env["JARVIS_EMBEDDED_DATABASE"] = "1"
    # Dev keys generated on first run are passed on, so the app sees the same ones.
    env.setdefault("JARVIS_MASTER_KEY", settings.master_key or "")
    env.setdefault("JARVIS_JWT_SECRET", settings.jwt_secret or "")
    env.setdefault("JARVIS_DB_APP_PASSWORD", settings.db_app_password or "")
    port = args.port or settings.port
    host = args.host or settings.host
    if os.environ.get("STREAMLIT_SERVER_PORT") and os.environ["STREAMLIT_SERVER_PORT"] != str(port):
        print(
            f"jarvis: note: STREAMLIT_SERVER_PORT is ignored; Jarvis serves on {port} "
            "(set JARVIS_PORT or --port instead).",
            file=sys.stderr,
        )
    # One process, one port: the UI and the HTTP API (jarvis.asgi). The client's address is
    # Jarvis's own business (JARVIS_TRUSTED_PROXIES), so uvicorn must not rewrite it.
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "jarvis.asgi:create_app",
        "--host",
        host,
        "--port",
        str(port),
        "--no-proxy-headers",
        "--no-server-header",
        "--timeout-graceful-shutdown",
        "10",
        "--log-level",
        "warning",
    ]
    print(
        f"Jarvis is starting on http://{host}:{port}  (API: http://{host}:{port}/api/v1/docs;"
        " Ctrl-C to stop)",
        flush=True,
    )
    proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parents[2])  # noqa: S603
    # SIGTERM (systemd, a supervisor, `kill`) stops the app and the database like Ctrl-C does.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
    finally:
        if server is not None:
            server.stop()
            print("Embedded PostgreSQL stopped.", flush=True)


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jarvis", description="Jarvis command line")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the database if needed, migrate, start the UI")
    up.add_argument("--port", type=int)
    up.add_argument("--host")
    up.set_defaults(handler=cmd_up)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True
    )
    db_up = db.add_parser("upgrade", help="apply migrations (creates the app role)")
    db_up.add_argument("--revision", default="heads")
    db_up.add_argument(
        "--owner-url", help="an owner URL for an external database (else DATABASE_URL)"
    )
    db_up.set_defaults(handler=cmd_db_upgrade)
    db.add_parser(
        "purge", help="delete expired sign-in state now (the job worker also does it daily)"
    ).set_defaults(handler=cmd_db_purge)

    users = sub.add_parser("users", help="accounts").add_subparsers(
        dest="users_command", required=True
    )
    add = users.add_parser("add", help="create an account; the password is read from stdin")
    add.add_argument("email")
    add.add_argument("--admin", action="store_true")
    add.add_argument("--name")
    add.set_defaults(handler=cmd_users_add)
    users.add_parser("list", help="list accounts").set_defaults(handler=cmd_users_list)

    # Command groups of other capabilities live in their own modules of this package.
    from jarvis.cli.api_keys import add_api_keys_commands
    from jarvis.cli.embeddings import add_embeddings_commands
    from jarvis.cli.jobs import add_job_commands
    from jarvis.cli.secrets import add_secrets_commands
    from jarvis.cli.usage import add_demo_commands, add_usage_commands

    add_secrets_commands(sub)
    add_usage_commands(sub)
    add_demo_commands(sub)
    add_embeddings_commands(sub)
    add_api_keys_commands(sub)
    add_job_commands(sub)
    return parser


def debug_enabled() -> bool:
    """Whether ``JARVIS_DEBUG`` asks for full tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class _OneLineLogFormatter(logging.Formatter):
    """A log record as one line (``jarvis: warning: ...``); its traceback only with
    ``JARVIS_DEBUG=1``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"jarvis: {record.levelname.lower()}: {record.getMessage()}"
        if debug_enabled():
            trace = record.exc_text or (
                self.formatException(record.exc_info) if record.exc_info else ""
            )
            if trace:
                line += "\n" + trace
        return line


def configure_cli_logging() -> None:
    """Warnings from the services a command uses (say, start-up run recovery on a database
    that is down) print as one redacted line each. Left alone when the process already
    configured logging (a test harness, a program embedding the CLI)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(_OneLineLogFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def run(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command; every error becomes one line on stderr and exit status 1 (130 for
    Ctrl-C). A non-Jarvis error shows only its type: its message may name a host or a path."""
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug_enabled():
            traceback.print_exc(file=sys.stderr)
        from jarvis.db.errors import translate

        # A driver error outside any unit of work (migrations, the embedded server) says the
        # same as one inside: "the database is unavailable", never a socket path.
        translated = translate(exc)
        if isinstance(exc, JarvisError) or isinstance(translated, DatabaseUnavailableError):
            line = str(translated)
        else:
            line = (
                f"unexpected error ({type(exc).__name__}); "
                f"run again with {DEBUG_ENV}=1 to see the traceback."
            )
        print(f"jarvis: {line}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    configure_cli_logging()
    return run(handler, args)
