"""``jarvis secrets ...``: master-key rotation, status and retirement (keys are never printed).

Rotation without downtime:

1. ``export JARVIS_NEW_MASTER_KEY=$(openssl rand -hex 32)`` (or pipe it on stdin).
2. Give the running app processes the new key as a readable one *before* rotating, e.g.
   ``JARVIS_OLD_MASTER_KEYS=2:<new key>`` next to the current ``JARVIS_MASTER_KEY`` (version 1),
   and restart them: they now read rows at either version.
3. ``jarvis secrets rotate-master-key`` (with the current settings, so the old key is known):
   checks every row opens (a wrong old key stops here, nothing changed), then re-wraps the data
   keys one user per transaction.
4. Switch the app to ``JARVIS_MASTER_KEY=<new key>``, ``JARVIS_MASTER_KEY_VERSION=2``,
   ``JARVIS_OLD_MASTER_KEYS=1:<old key>``; restart.
5. ``jarvis secrets retire-master-key 1`` confirms no row needs version 1; then drop it from
   ``JARVIS_OLD_MASTER_KEYS``.

A single-process install may skip step 2: its reads of rotated rows fail only until step 4.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING

from jarvis.errors import JarvisError

if TYPE_CHECKING:
    from jarvis.services.key_rotation import KeyRotation

NEW_KEY_ENV = "JARVIS_NEW_MASTER_KEY"


def read_new_master_key() -> str:
    """From ``JARVIS_NEW_MASTER_KEY``, else stdin (a pipe) or the terminal (asked twice)."""
    value = os.environ.get(NEW_KEY_ENV, "").strip()
    if value:
        return value
    if sys.stdin.isatty():
        first = getpass.getpass("New master key (64 hex characters): ")
        if getpass.getpass("Repeat the new master key: ") != first:
            raise JarvisError("The keys do not match.")
        return first
    return sys.stdin.readline().strip()


def _rotation(args: argparse.Namespace) -> KeyRotation:
    from jarvis.cli import _services

    return _services(args).key_rotation


def cmd_rotate(args: argparse.Namespace) -> int:
    from jarvis.services.key_rotation import parse_master_key

    new_key = parse_master_key(read_new_master_key())
    report = _rotation(args).rotate(new_key, args.new_version)
    print(
        f"Re-wrapped {report.rotated} secret(s) of {report.users} user(s) under master key "
        f"version {report.new_version} ({report.already_current} already there)."
    )
    old = sorted(v for v in report.by_version_before if v != report.new_version)
    print(
        "Next: set JARVIS_MASTER_KEY to the new key, "
        f"JARVIS_MASTER_KEY_VERSION={report.new_version}, "
        "keep the previous key(s) in JARVIS_OLD_MASTER_KEYS and restart the app; then run "
        f"`jarvis secrets retire-master-key {old[0] if old else 'VERSION'}`."
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rotation = _rotation(args)
    counts = rotation.key_versions_in_use()
    if not counts:
        print("No secrets are stored.")
    for version, count in counts.items():
        print(f"master key version {version}\t{count} secret(s)")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    _rotation(args).retire(args.version)
    print(
        f"No secret uses master key version {args.version} any more: "
        "remove it from JARVIS_OLD_MASTER_KEYS and restart the app."
    )
    return 0


def add_secrets_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``jarvis secrets`` on the top-level sub-parsers."""
    secrets = sub.add_parser("secrets", help="secrets vault maintenance").add_subparsers(
        dest="secrets_command", required=True
    )
    rotate = secrets.add_parser(
        "rotate-master-key",
        help=f"re-wrap every data key under a new master key (from ${NEW_KEY_ENV} or stdin)",
    )
    rotate.add_argument(
        "--new-version", type=int, help="version number of the new key (default: next free)"
    )
    rotate.set_defaults(handler=cmd_rotate)
    secrets.add_parser("key-status", help="secrets per master key version").set_defaults(
        handler=cmd_status
    )
    retire = secrets.add_parser(
        "retire-master-key", help="check that no secret still needs an old master key version"
    )
    retire.add_argument("version", type=int)
    retire.set_defaults(handler=cmd_retire)
