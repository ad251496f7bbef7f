"""The rules of a server registration (pure, no I/O): names, transport, credentials, bounds."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence

from jarvis.errors import ValidationError
from jarvis.services.mcp.views import CredentialSlot, McpServerInput
from jarvis.services.secrets.validation import PROVIDER_LABELS, PROVIDERS
from jarvis.validation import clean_line

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
#: Headers the HTTP client sets itself: an admin may not override them.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "accept", "connection", "transfer-encoding"}
    | {"mcp-session-id", "mcp-protocol-version", "last-event-id"}
)
#: Variables that would change which program runs or how.
RESERVED_ENV = frozenset({"PATH", "PYTHONPATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "HOME"})
_SLOT = re.compile(r"^(?P<name>[^:]+):(?P<value>.*)$")
_VALUE = re.compile(r"^(?P<prefix>[^{}]*)\{(?P<provider>[a-z_]+)\}$")
MAX_ARGS = 50
MAX_SLOTS = 10
TIMEOUT_RANGE = (1, 300)
RESULT_RANGE = (256, 1_000_000)


def parse_args(text: str) -> tuple[str, ...]:
    """Command-line arguments as a shell would split them (``-m "my server"``)."""
    try:
        parts = shlex.split(text or "")
    except ValueError as exc:
        raise ValidationError(f"The arguments cannot be split: {exc}.", field="args") from None
    return tuple(parts)


def parse_slots(text: str, *, field: str) -> tuple[CredentialSlot, ...]:
    """One slot per line, ``Name: prefix{provider}``: ``Authorization: Bearer {composio}``
    (a header) or ``COMPOSIO_API_KEY: {composio}`` (a variable)."""
    slots = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        if not raw.strip():
            continue
        match = _SLOT.match(raw.strip())
        value = _VALUE.match(match["value"].lstrip()) if match else None
        if match is None or value is None:
            raise ValidationError(
                f"Line {number}: write it as Name: prefix{{provider}}, e.g. "
                "Authorization: Bearer {composio}.",
                field=field,
            )
        slots.append(
            CredentialSlot(
                name=match["name"].strip(),
                prefix=value["prefix"],
                secret_provider=value["provider"],
            )
        )
    return tuple(slots)


def checked(data: McpServerInput) -> McpServerInput:
    """``data`` cleaned, or a :class:`ValidationError` naming the field (the URL's address is
    checked by the service, against the SSRF guard)."""
    name = (data.name or "").strip()
    if not NAME.match(name):
        raise ValidationError(
            "The name must start with a lowercase letter and use only a-z, 0-9, _ and - "
            "(at most 32 characters).",
            field="name",
        )
    if data.transport not in ("stdio", "http"):
        raise ValidationError("The transport must be stdio or http.", field="transport")
    command = url = None
    args: tuple[str, ...] = ()
    if data.transport == "stdio":
        command = clean_line(data.command, field="command", max_chars=500)
        args = tuple(
            clean_line(a, field="args", label="argument", max_chars=500) for a in data.args
        )
        if len(args) > MAX_ARGS:
            raise ValidationError(f"At most {MAX_ARGS} arguments.", field="args")
    else:
        url = clean_line(data.url, field="url", label="URL", max_chars=2000)
    headers = _slots(data.headers, field="headers", http=True) if data.transport == "http" else ()
    env = _slots(data.env, field="env", http=False) if data.transport == "stdio" else ()
    return McpServerInput(
        name=name,
        transport=data.transport,
        command=command,
        args=args,
        url=url,
        headers=headers,
        env=env,
        enabled=bool(data.enabled),
        default_allowed=bool(data.default_allowed),
        timeout_seconds=_within(data.timeout_seconds, TIMEOUT_RANGE, "timeout_seconds", "timeout"),
        max_result_bytes=_within(
            data.max_result_bytes, RESULT_RANGE, "max_result_bytes", "result limit"
        ),
    )


def _within(value: object, bounds: tuple[int, int], field: str, label: str) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"The {label} must be a whole number from {low} to {high:,}.", field=field
        )
    return value


def _slots(
    slots: Sequence[CredentialSlot], *, field: str, http: bool
) -> tuple[CredentialSlot, ...]:
    if len(slots) > MAX_SLOTS:
        raise ValidationError(f"At most {MAX_SLOTS} credentials.", field=field)
    seen: set[str] = set()
    out = []
    for slot in slots:
        name = slot.name.strip()
        if http:
            if not HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                raise ValidationError(f"{name[:64]!r} cannot be used as a header.", field=field)
        elif not ENV_NAME.match(name) or name in RESERVED_ENV:
            raise ValidationError(
                f"{name[:64]!r} cannot be used as an environment variable "
                "(A-Z, 0-9 and _, not PATH, HOME or the like).",
                field=field,
            )
        if name.lower() in seen:
            raise ValidationError(f"{name[:64]!r} appears twice.", field=field)
        seen.add(name.lower())
        if slot.secret_provider not in PROVIDERS:
            raise ValidationError(
                f"Unknown secret provider {slot.secret_provider[:40]!r}; one of: "
                f"{', '.join(PROVIDERS)}.",
                field=field,
            )
        prefix = slot.prefix
        if len(prefix) > 64 or any(not ch.isprintable() for ch in prefix):
            raise ValidationError("A prefix is at most 64 printable characters.", field=field)
        out.append(CredentialSlot(name=name, prefix=prefix, secret_provider=slot.secret_provider))
    return tuple(out)


def providers_of(slots: Iterable[CredentialSlot]) -> list[str]:
    """The providers whose secrets the slots need, in order, once each."""
    return list(dict.fromkeys(s.secret_provider for s in slots))


def provider_label(provider: str) -> str:
    return PROVIDER_LABELS.get(provider, provider)


def form_input(
    *,
    name: str,
    transport: str,
    command: str,
    args_text: str,
    url: str,
    credentials_text: str,
    enabled: bool,
    default_allowed: bool,
    timeout_seconds: int,
    max_result_bytes: int,
) -> McpServerInput:
    """A server from the admin form's fields: the arguments as one shell-like line, the
    credentials one per line (headers for http, environment variables for stdio)."""
    slots = parse_slots(credentials_text, field="headers" if transport == "http" else "env")
    return McpServerInput(
        name=name,
        transport=transport,
        command=command if transport == "stdio" else None,
        args=parse_args(args_text) if transport == "stdio" else (),
        url=url if transport == "http" else None,
        headers=slots if transport == "http" else (),
        env=slots if transport == "stdio" else (),
        enabled=enabled,
        default_allowed=default_allowed,
        timeout_seconds=int(timeout_seconds),
        max_result_bytes=int(max_result_bytes),
    )
