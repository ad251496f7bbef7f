"""Password sign-in against the real database: rehash, one error for everything, throttling."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from jarvis.bootstrap import Services, build_services
from jarvis.clock import FixedClock
from jarvis.errors import (
    AccountDisabledError,
    AccountLockedError,
    InvalidCredentialsError,
    RateLimitError,
    ValidationError,
)
from jarvis.security.passwords import PasswordHasher
from jarvis.services.auth import LoginPolicy
from tests import factories
from tests.factories import OPERATOR
from tests.factories import PASSWORD as PW


def rebuilt(
    services: Services,
    clock: FixedClock,
    *,
    hasher: PasswordHasher | None = None,
    login_policy: LoginPolicy | None = None,
) -> Services:
    """Services on the same rolled-back transaction and clock, with another hasher or policy."""
    return build_services(
        services.settings,
        engine=services.engine,
        uow=services.uow,
        clock=clock,
        hasher=hasher,
        login_policy=login_policy,
        recover_runs=False,
    )


def stored_hash(services: Services, email: str) -> str:
    with services.uow() as uow:
        user_id = uow.users.id_for_email(email)
        assert user_id is not None
        uow.act_as(user_id)
        user = uow.users.get(user_id)
        assert user is not None
        return user.password_hash


def test_login_rehashes_a_hash_with_old_parameters(services: Services, clock: FixedClock) -> None:
    weak = PasswordHasher(memory_cost=256, time_cost=1)
    rebuilt(services, clock, hasher=weak).accounts.register("old@example.com", PW, actor=OPERATOR)
    before = stored_hash(services, "old@example.com")
    assert "m=256,t=1" in before
    services.sign_in.check_credentials("old@example.com", PW)
    after = stored_hash(services, "old@example.com")
    assert after != before
    assert "m=1024,t=1,p=1" in after  # the (test) hasher's current parameters
    services.sign_in.check_credentials("old@example.com", PW)  # the new hash works
    assert stored_hash(services, "old@example.com") == after  # and is not rehashed again


def test_production_parameters_are_stored(services: Services, clock: FixedClock) -> None:
    strong = rebuilt(services, clock, hasher=PasswordHasher())
    strong.accounts.register("strong@example.com", PW, actor=OPERATOR)
    assert stored_hash(services, "strong@example.com").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert strong.sign_in.check_credentials("strong@example.com", PW).email == "strong@example.com"
    assert stored_hash(services, "strong@example.com").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_unknown_email_and_wrong_password_give_the_same_error(services: Services) -> None:
    services.accounts.register("known@example.com", PW, actor=OPERATOR)
    with pytest.raises(InvalidCredentialsError) as wrong:
        services.sign_in.check_credentials("known@example.com", "wrong password 1")
    with pytest.raises(InvalidCredentialsError) as unknown:
        services.sign_in.check_credentials("nobody@example.com", "wrong password 1")
    assert str(wrong.value) == str(unknown.value) == "Invalid email or password."
    assert type(wrong.value) is type(unknown.value)


def test_unknown_email_still_spends_a_hash(services: Services, clock: FixedClock) -> None:
    slow = PasswordHasher(memory_cost=19456, time_cost=2)  # the real cost: ~tens of ms
    timed_services = rebuilt(services, clock, hasher=slow)
    timed_services.accounts.register("timing@example.com", PW, actor=OPERATOR)

    def timed(email: str) -> float:
        started = time.perf_counter()
        with pytest.raises(InvalidCredentialsError):
            timed_services.sign_in.check_credentials(email, "wrong password 1")
        return time.perf_counter() - started

    wrong = min(timed("timing@example.com") for _ in range(3))
    unknown = min(timed("nobody-timing@example.com") for _ in range(3))
    # Both verify one argon2id hash; without the dummy hash "unknown" would be ~100x faster.
    assert unknown > wrong * 0.5, (unknown, wrong)


def test_long_and_unicode_passwords(services: Services) -> None:
    unicode_pw = "Grüße, 世界! 🔐 " * 3
    services.accounts.register("uni@example.com", unicode_pw, actor=OPERATOR)
    assert (
        services.sign_in.check_credentials("uni@example.com", unicode_pw).email == "uni@example.com"
    )
    long_pw = "x" * 1023 + "y"
    services.accounts.register("long@example.com", long_pw, actor=OPERATOR)
    assert (
        services.sign_in.check_credentials("long@example.com", long_pw).email == "long@example.com"
    )
    with pytest.raises(InvalidCredentialsError):
        services.sign_in.check_credentials("long@example.com", "x" * 1023 + "z")  # not truncated
    started = time.perf_counter()
    with pytest.raises(ValidationError):
        services.sign_in.check_credentials("long@example.com", "x" * 100_000)
    assert time.perf_counter() - started < 0.5
    with pytest.raises(ValidationError):
        services.accounts.register("toolong@example.com", "x" * 1025, actor=OPERATOR)


def test_deactivated_accounts_cannot_sign_in(services: Services) -> None:
    admin = factories.admin_account(services, "boss@example.com")
    user = services.accounts.register("gone@example.com", PW, actor=OPERATOR)
    services.admin.set_active(admin, user.user_id, False)
    with pytest.raises(AccountDisabledError):
        services.sign_in.check_credentials("gone@example.com", PW)


def test_repeated_failures_lock_the_account_even_from_many_ips(
    services: Services, clock: FixedClock
) -> None:
    services.accounts.register("target@example.com", PW, actor=OPERATOR)
    threshold = services.sign_in.policy.account_threshold
    for i in range(threshold - 1):
        with pytest.raises(InvalidCredentialsError):
            services.sign_in.check_credentials(
                "target@example.com", f"guess-{i}-xx", ip=f"198.51.100.{i + 1}"
            )
    with pytest.raises(AccountLockedError) as locked:
        services.sign_in.check_credentials("target@example.com", "guess-last-x", ip="203.0.113.50")
    assert locked.value.retry_after == services.sign_in.policy.lockout_base_seconds
    assert "Try again in" in str(locked.value)
    # Even the right password is refused while locked, from a brand-new IP.
    with pytest.raises(AccountLockedError) as still:
        services.sign_in.check_credentials("target@example.com", PW, ip="192.0.2.77")
    assert 0 < still.value.retry_after <= 60
    clock.advance(seconds=61)
    assert (
        services.sign_in.check_credentials("target@example.com", PW, ip="192.0.2.77").email
        == "target@example.com"
    )


def test_lockouts_grow_and_success_resets(services: Services, clock: FixedClock) -> None:
    services.accounts.register("grow@example.com", PW, actor=OPERATOR)
    policy = services.sign_in.policy
    waits = []
    for _round in range(3):
        for _ in range(policy.account_threshold - 1):
            with pytest.raises(InvalidCredentialsError):
                services.sign_in.check_credentials("grow@example.com", "wrong password 1")
        with pytest.raises(AccountLockedError) as locked:
            services.sign_in.check_credentials("grow@example.com", "wrong password 1")
        waits.append(locked.value.retry_after)
        clock.advance(seconds=locked.value.retry_after + 1)
    assert waits == [60, 120, 240]
    services.sign_in.check_credentials("grow@example.com", PW)
    for _ in range(policy.account_threshold - 1):
        with pytest.raises(InvalidCredentialsError):
            services.sign_in.check_credentials("grow@example.com", "wrong password 1")
    with pytest.raises(AccountLockedError) as again:
        services.sign_in.check_credentials("grow@example.com", "wrong password 1")
    assert again.value.retry_after == 60  # back to the first step after a success


def test_unknown_emails_lock_the_same_way(services: Services) -> None:
    # Otherwise the lockout itself would tell which emails have accounts.
    for _ in range(services.sign_in.policy.account_threshold - 1):
        with pytest.raises(InvalidCredentialsError):
            services.sign_in.check_credentials("ghost@example.com", "wrong password 1")
    with pytest.raises(AccountLockedError):
        services.sign_in.check_credentials("ghost@example.com", "wrong password 1")


def test_per_ip_throttling(services: Services, clock: FixedClock) -> None:
    policy = LoginPolicy(ip_limit=3, ip_window_seconds=60, account_threshold=100)
    sign_in = rebuilt(
        services, clock, hasher=PasswordHasher(memory_cost=1024, time_cost=1), login_policy=policy
    ).sign_in
    for i in range(3):
        with pytest.raises(InvalidCredentialsError):
            sign_in.check_credentials(f"spray{i}@example.com", "wrong password 1", ip="203.0.113.7")
    with pytest.raises(RateLimitError) as limited:
        sign_in.check_credentials("spray9@example.com", "wrong password 1", ip="203.0.113.7")
    assert 0 < limited.value.retry_after <= 60
    assert "Try again in" in str(limited.value)
    # Another address is not affected.
    with pytest.raises(InvalidCredentialsError):
        sign_in.check_credentials("spray9@example.com", "wrong password 1", ip="203.0.113.8")
    clock.advance(seconds=61)
    with pytest.raises(InvalidCredentialsError):
        sign_in.check_credentials("spray9@example.com", "wrong password 1", ip="203.0.113.7")


def test_throttling_state_lives_in_postgres_across_processes(
    committed_services: Services, unique_email: Callable[[str], str], fast_hasher: PasswordHasher
) -> None:
    """Two services (two "app processes") on the same database share the lockout."""
    from jarvis.bootstrap import build_services

    other = build_services(committed_services.settings, hasher=fast_hasher, background=False)
    email = unique_email("shared")
    for i in range(committed_services.sign_in.policy.account_threshold - 1):
        svc = committed_services if i % 2 else other
        with pytest.raises(InvalidCredentialsError):
            svc.sign_in.check_credentials(email, "wrong password 1", ip=f"192.0.2.{i + 1}")
    with pytest.raises(AccountLockedError):
        other.sign_in.check_credentials(email, "wrong password 1", ip="192.0.2.200")
    with pytest.raises(AccountLockedError):
        committed_services.sign_in.check_credentials(email, "wrong password 1", ip="192.0.2.201")
    other.engine.dispose()


def test_sign_in_events_are_audited_without_secrets(services: Services) -> None:
    admin = factories.admin_account(services, "auditor@example.com")
    with pytest.raises(InvalidCredentialsError):
        services.sign_in.check_credentials(
            "auditor@example.com", "wrong password 1", ip="203.0.113.5"
        )
    with pytest.raises(InvalidCredentialsError):
        services.sign_in.check_credentials(
            "nobody@example.com", "another wrong one", ip="203.0.113.5"
        )
    for _ in range(services.sign_in.policy.account_threshold - 1):
        with pytest.raises(InvalidCredentialsError):
            services.sign_in.check_credentials("victim@example.com", "wrong password 1")
    with pytest.raises(AccountLockedError):  # the threshold-th failure in a row locks
        services.sign_in.check_credentials(
            "victim@example.com", "wrong password 1", ip="198.51.100.7"
        )
    services.sign_in.login("auditor@example.com", PW, ip="203.0.113.5", user_agent="pytest")
    events = services.admin.audit_log(admin)
    got = [e.action for e in events]
    assert "login.success" in got
    assert got.count("login.failure") >= 2
    # This test's own lockout (other tests commit lockouts an admin also sees).
    lockout = [e for e in events if e.action == "login.lockout" and e.ip == "198.51.100.7"]
    assert len(lockout) == 1
    failure = next(e for e in events if e.action == "login.failure" and e.user_id == admin.user_id)
    assert failure.ip == "203.0.113.5"
    text = repr(events)
    for secret in (PW, "wrong password 1", "another wrong one"):
        assert secret not in text


def test_guessing_the_current_password_on_the_account_page_locks_too(
    services: Services, clock: FixedClock
) -> None:
    user = factories.account(services, "Hijacked@Example.com")
    for _ in range(services.sign_in.policy.account_threshold - 1):
        with pytest.raises(InvalidCredentialsError):
            services.accounts.change_password(user, "guess guess", "new passphrase 1")
    with pytest.raises(AccountLockedError):
        services.accounts.change_password(user, "guess guess", "new passphrase 1")
    # The sign-in form is locked as well (same account), and so is the right password.
    with pytest.raises(AccountLockedError):
        services.sign_in.check_credentials("hijacked@example.com", PW)
    with pytest.raises(AccountLockedError):
        services.accounts.change_password(user, PW, "new passphrase 1")
    clock.advance(seconds=61)
    services.accounts.change_password(user, PW, "new passphrase 1")
    assert services.sign_in.check_credentials("hijacked@example.com", "new passphrase 1") == user


def test_self_service_sign_ups_are_limited_per_ip(services: Services) -> None:
    admin = factories.admin_account(services, "signup-admin@example.com")
    services.accounts.set_signup_open(admin, True)
    limit = services.sign_in.policy.signups_per_ip
    for i in range(limit):
        services.accounts.register(f"bot{i}@example.com", PW, ip="203.0.113.66")
    with pytest.raises(RateLimitError):
        services.accounts.register("bot-last@example.com", PW, ip="203.0.113.66")
    services.accounts.register("human@example.com", PW, ip="203.0.113.67")
    # Administrators adding people are not limited.
    services.accounts.register("added@example.com", PW, actor=admin, ip="203.0.113.66")


def test_purge_forgets_only_throttling_state_that_has_gone_stale(
    services: Services, clock: FixedClock
) -> None:
    services.accounts.register("purge@example.com", PW, actor=OPERATOR)
    for _ in range(3):
        with pytest.raises(InvalidCredentialsError):
            services.sign_in.check_credentials(
                "purge@example.com", "wrong password 1", ip="203.0.113.9"
            )
    assert services.sign_in.purge_throttles() == 0  # fresh failures are kept
    clock.advance(days=3)
    assert services.sign_in.purge_throttles() >= 2  # the account counter and the IP window
    assert services.sign_in.purge_throttles() == 0
