"""Run a coroutine from a synchronous test, whatever the main thread is doing.

Playwright's sync API (the browser tests, session-scoped) keeps an event loop running in the
main thread, and ``anyio.run`` refuses to start a loop inside a running one; so the coroutine
gets its own thread and its own loop.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


def run_async(main: Callable[[], Awaitable[T]], *, timeout: float = 120.0) -> T:
    """``anyio.run(main)`` on a fresh thread; its result, or its exception re-raised."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(anyio.run(main))
        except BaseException as exc:  # handed back to the test's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="test-async", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the coroutine did not finish within {timeout} s")
    if error:
        raise error[0]
    return result[0]
