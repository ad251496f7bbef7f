"""The PostgreSQL rate limiter: fixed windows, retry-after, shared by every process."""

from __future__ import annotations

import threading
import uuid

import pytest

from jarvis.bootstrap import Services
from jarvis.clock import FixedClock
from jarvis.services.rate_limits import RateLimiter, window_start


def test_limit_then_refuse_then_next_window(services: Services, clock: FixedClock) -> None:
    limiter = services.rate_limiter
    key = f"test:{uuid.uuid4()}"
    clock.set(clock.now().replace(second=0, microsecond=0))
    assert [limiter.hit(key, 3, 60).allowed for _ in range(3)] == [True, True, True]
    allowed, retry_after = limiter.hit(key, 3, 60)
    assert not allowed and retry_after == 60
    clock.advance(seconds=45)
    decision = limiter.hit(key, 3, 60)
    assert not decision.allowed and decision.retry_after == 15
    clock.advance(seconds=16)
    assert limiter.hit(key, 3, 60).allowed
    assert limiter.peek(key, 60) == 1
    limiter.reset(key)
    assert limiter.peek(key, 60) == 0


def test_keys_are_independent(services: Services) -> None:
    a, b = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    assert services.rate_limiter.hit(a, 1, 60).allowed
    assert not services.rate_limiter.hit(a, 1, 60).allowed
    assert services.rate_limiter.hit(b, 1, 60).allowed


def test_counts_are_exact_under_concurrency(committed_services: Services) -> None:
    """Eight threads on their own connections, 5 hits each: exactly the limit gets through."""
    limiter = RateLimiter(committed_services.uow, committed_services.clock)
    key = f"test:{uuid.uuid4()}"
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            decision = limiter.hit(key, 17, 3600)
            with lock:
                allowed.append(decision.allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(allowed) == 40
    assert allowed.count(True) == 17
    limiter.reset(key)


def test_old_windows_of_a_key_are_cleaned_up(services: Services, clock: FixedClock) -> None:
    key = f"test:{uuid.uuid4()}"
    windows = []
    for _ in range(3):
        services.rate_limiter.hit(key, 5, 60)
        windows.append(window_start(clock.now(), 60))
        clock.advance(seconds=60)
    services.rate_limiter.hit(key, 5, 60)
    # The app role cannot read the table (migration 0013): ask one window at a time.
    with services.uow() as uow:
        old = [uow.rate_limits.count(key, w) for w in windows]
        current = uow.rate_limits.count(key, window_start(clock.now(), 60))
    assert old == [0, 0, 0]
    assert current == 1


def test_several_limits_are_counted_together_and_decided_each(
    services: Services, clock: FixedClock
) -> None:
    limiter = services.rate_limiter
    user, address = f"test:user:{uuid.uuid4()}", f"test:ip:{uuid.uuid4()}"
    clock.set(clock.now().replace(second=0, microsecond=0))
    first = limiter.hit_all([(user, 1), (address, 3)], 60)
    assert [d.allowed for d in first] == [True, True]
    assert [d.count for d in first] == [1, 1]
    # Refused by the first limit, the event still counts against the second.
    second = limiter.hit_all([(user, 1), (address, 3)], 60)
    assert [(d.allowed, d.retry_after) for d in second] == [(False, 60), (True, 0.0)]
    assert limiter.peek(address, 60) == 2
    clock.advance(seconds=20)
    third = limiter.hit_all([(f"test:user:{uuid.uuid4()}", 5), (address, 3)], 60)
    assert [d.allowed for d in third] == [True, True]
    fourth = limiter.hit_all([(f"test:user:{uuid.uuid4()}", 5), (address, 3)], 60)
    assert [(d.allowed, d.retry_after) for d in fourth] == [(True, 0.0), (False, 40)]
    assert limiter.hit_all([], 60) == []
    with pytest.raises(ValueError):
        limiter.hit_all([(user, 0), (address, 3)], 60)
    assert limiter.peek(address, 60) == 4  # nothing counted for a refused call
