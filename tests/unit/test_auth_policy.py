"""The pure rules of accounts and sign-in, without a database."""

from __future__ import annotations

import pytest

from jarvis.errors import AccountLockedError, ValidationError
from jarvis.services.auth.policy import (
    LoginPolicy,
    clean_ip,
    describe_wait,
    locked_error,
    lockout_key,
    normalise_email,
)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "1 second"),
        (1, "1 second"),
        (44.2, "45 seconds"),
        (89, "89 seconds"),
        (90, "2 minutes"),
        (3600, "60 minutes"),
        (5400, "2 hours"),
        (86400, "24 hours"),
    ],
)
def test_waits_are_worded_for_people(seconds: float, words: str) -> None:
    assert describe_wait(seconds) == words


def test_emails_are_trimmed_and_checked() -> None:
    assert normalise_email("  Ada@Example.com ") == "Ada@Example.com"
    for bad in ("", "ada", "ada@example", "a b@example.com", "x" * 65 + "@example.com"):
        with pytest.raises(ValidationError):
            normalise_email(bad)


def test_lockout_keys_ignore_case_and_spaces_and_are_bounded() -> None:
    assert lockout_key(" Ada@Example.COM ") == "ada@example.com"
    assert len(lockout_key("a" * 1000)) == 320


def test_client_ips_are_canonical_or_dropped() -> None:
    assert clean_ip("2001:DB8::0001") == "2001:db8::1"
    assert clean_ip("203.0.113.9") == "203.0.113.9"
    assert clean_ip("not an ip") is None
    assert clean_ip(None) is None


def test_lockouts_double_up_to_the_maximum() -> None:
    policy = LoginPolicy(lockout_base_seconds=60, lockout_max_seconds=300)
    assert [policy.lockout_seconds(n) for n in range(1, 6)] == [60, 120, 240, 300, 300]


def test_the_locked_error_says_how_long() -> None:
    error = locked_error(120)
    assert isinstance(error, AccountLockedError)
    assert error.retry_after == 120.0
    assert str(error) == "Too many failed sign-in attempts. Try again in 2 minutes."
