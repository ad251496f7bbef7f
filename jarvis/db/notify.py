"""PostgreSQL ``LISTEN`` for one process: wake the threads that wait for a run's events.

Every app process keeps one dedicated connection (autocommit, the app role) listening on a few
channels. Writers ``pg_notify`` in the transaction that appends the rows, so a notification is
delivered at commit, after the rows are visible. A waiter never relies on it alone: it waits
with a timeout and then reads the table again (polling), so followers keep working where
notifications are not delivered (a transaction-pooling proxy, a listener that is reconnecting).

Payloads carry ids only (``<run id>:<seq>``), never user data: any session may listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

#: A run's event log grew (payload ``<run id>:<last seq>``).
RUN_EVENTS_CHANNEL = "jarvis_run_events"
#: Someone asked a run to stop (payload ``<run id>``).
RUN_CANCEL_CHANNEL = "jarvis_run_cancel"

Handler = Callable[[str], None]


class Watch:
    """A wake-up flag for one key (a run id): set by a notification, cleared by the waiter.

    Threads wait with :meth:`wait`; coroutines with :meth:`wait_async` (the notification is
    handed to their event loop, so an idle follower holds no thread)."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_flag: asyncio.Event | None = None

    def clear(self) -> None:
        self._flag.clear()
        if self._async_flag is not None:
            self._async_flag.clear()

    def wait(self, timeout: float) -> bool:
        """Sleep until woken or ``timeout`` seconds passed; True when woken."""
        return self._flag.wait(timeout)

    async def wait_async(self, timeout: float) -> bool:
        """:meth:`wait` for a coroutine (call it from one event loop only)."""
        if self._async_flag is None:
            self._loop = asyncio.get_running_loop()
            self._async_flag = asyncio.Event()
            if self._flag.is_set():
                self._async_flag.set()
        try:
            await asyncio.wait_for(self._async_flag.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def wake(self) -> None:
        self._flag.set()
        loop, flag = self._loop, self._async_flag
        if loop is not None and flag is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(flag.set)


class Notifier:
    """One listening connection per process; reconnects by itself after a database outage."""

    def __init__(
        self,
        dsn: str,
        channels: Sequence[str] = (RUN_EVENTS_CHANNEL, RUN_CANCEL_CHANNEL),
        *,
        reconnect_seconds: float = 1.0,
    ) -> None:
        self._dsn = dsn
        self._channels = tuple(channels)
        self._reconnect_seconds = reconnect_seconds
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, str], set[Watch]] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the listening thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="jarvis-notify-listener", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._listening.clear()

    @property
    def listening(self) -> bool:
        """True while notifications can arrive (waiters may then poll less often)."""
        return self._listening.is_set()

    def wait_until_listening(self, timeout: float) -> bool:
        return self._listening.wait(timeout)

    # -- subscriptions ----------------------------------------------------------------------

    @contextmanager
    def watch(self, channel: str, key: str) -> Iterator[Watch]:
        """A :class:`Watch` woken by each notification on ``channel`` whose key is ``key``."""
        w = Watch()
        slot = (channel, key)
        with self._lock:
            self._watches.setdefault(slot, set()).add(w)
        try:
            yield w
        finally:
            with self._lock:
                waiting = self._watches.get(slot)
                if waiting is not None:
                    waiting.discard(w)
                    if not waiting:
                        del self._watches[slot]

    def on(self, channel: str, handler: Handler) -> None:
        """Call ``handler(payload)`` (on the listener thread; keep it quick) per notification."""
        with self._lock:
            self._handlers.setdefault(channel, []).append(handler)

    def dispatch(self, channel: str, payload: str) -> None:
        """Deliver one notification (the listener thread; also usable in-process)."""
        key = payload.split(":", 1)[0]
        with self._lock:
            watches = list(self._watches.get((channel, key), ()))
            handlers = list(self._handlers.get(channel, ()))
        for w in watches:
            w.wake()
        for handler in handlers:
            try:
                handler(payload)
            except Exception:
                log.warning("notification handler failed", exc_info=True)

    def wake_all(self) -> None:
        """Wake every waiter (after a reconnect some notifications may have been missed)."""
        with self._lock:
            watches = [w for ws in self._watches.values() for w in ws]
        for w in watches:
            w.wake()

    # -- the listening thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    for channel in self._channels:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._listening.set()
                    self.wake_all()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.dispatch(note.channel, note.payload)
            except psycopg.Error:
                if not self._stop.is_set():
                    log.warning("event listener lost its connection; reconnecting")
            finally:
                self._listening.clear()
            if not self._stop.is_set():
                time.sleep(self._reconnect_seconds)
