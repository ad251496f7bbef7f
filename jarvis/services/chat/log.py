"""The run event log: the worker appends, every follower replays and follows.

* :class:`RunEventWriter` numbers one run's events (``seq`` 1, 2, ... gap-free) and appends them
  to ``run_events``; consecutive text deltas are coalesced into one event per flush, and a flush
  happens at most every ``coalesce_seconds`` (the :class:`Flusher` thread writes the tail while
  the model is silent). The run's last events go in with the run's closing statement.
* :func:`follow` replays a run's log after a sequence number and then follows it: woken by
  ``LISTEN/NOTIFY`` (:mod:`jarvis.db.notify`) and, whatever happens to notifications, by polling.
  It ends after the run's terminal event. This is what the chat page and the SSE endpoint serve.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext

import anyio

from jarvis.db.notify import RUN_EVENTS_CHANNEL, Watch
from jarvis.db.repositories.run_log import JsonObject, LoggedEvent, RunFinish
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import DatabaseError, NotFoundError
from jarvis.services.chat import events as ev
from jarvis.services.chat.ports import EventWatcher
from jarvis.validation import is_valid_unicode, storable_json

log = logging.getLogger(__name__)

#: Text deltas are written at most this often (the page sees the answer grow at this pace).
COALESCE_SECONDS = 0.05
#: A follower re-reads the log this often even without a notification.
POLL_SECONDS = 0.25
#: How soon a run's first event is written (later events: every COALESCE_SECONDS).
FIRST_FLUSH_SECONDS = 0.01
#: ... and this often while notifications arrive (they wake it sooner).
POLL_SECONDS_LISTENING = 1.0


class RunEventWriter:
    """Appends one run's events to its log (thread-safe: the worker and the flusher)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        user_id: uuid.UUID,
        run_id: uuid.UUID,
        *,
        flusher: Flusher | None = None,
        coalesce_seconds: float = COALESCE_SECONDS,
    ) -> None:
        self._uow = uow
        self._user_id = user_id
        self.run_id = run_id
        self._flusher = flusher
        self._coalesce = coalesce_seconds
        self._lock = threading.Lock()
        self._seq = 0
        self._pending: list[LoggedEvent] = []
        # The text of the trailing pending text_delta, in parts: a streamed answer's words are
        # joined once when it is written, not copied into a new payload per word.
        self._parts: list[str] | None = None
        # The first event (run_started) is due after FIRST_FLUSH_SECONDS: followers (the page,
        # an SSE client) see a run begin within a flusher tick or two, while a quick run (the
        # offline model) is still logged by its closing statement alone.
        self._last_flush = time.monotonic() - max(0.0, coalesce_seconds - FIRST_FLUSH_SECONDS)
        #: True once the log refused an append: the run was closed elsewhere (recovered).
        self.closed = False

    def emit(self, event: ev.Event, *, defer: bool = False) -> None:
        """Add an event; it is written now or within ``coalesce_seconds``. ``defer``: only
        queue it, for the run's close (or a later event) to write — a run that is ending
        writes nothing more while its model's stream may still be winding down."""
        with self._lock:
            if isinstance(event, ev.TextDelta):
                if self._parts is None:
                    self._seq += 1
                    self._pending.append(LoggedEvent(self._seq, event.type, _delta(event)))
                    self._parts = []
                self._parts.append(_storable(event.text))
            else:
                self._join_parts()
                self._seq += 1
                self._pending.append(LoggedEvent(self._seq, event.type, _payload(event)))
            due = time.monotonic() - self._last_flush >= self._coalesce
        if defer:
            return
        if due:
            self.flush()
        elif self._flusher is not None:
            self._flusher.schedule(self)

    def _join_parts(self) -> None:
        """Put the trailing text_delta's parts into its payload (under the lock)."""
        if self._parts is None:
            return
        last = self._pending[-1]
        self._pending[-1] = LoggedEvent(
            last.seq, last.type, dict(last.payload, text="".join(self._parts))
        )
        self._parts = None

    def due(self) -> bool:
        with self._lock:
            return bool(self._pending) and (time.monotonic() - self._last_flush >= self._coalesce)

    def idle(self) -> bool:
        """Nothing left to write (or the run was closed): the flusher may forget it."""
        with self._lock:
            return self.closed or not self._pending

    def flush(self) -> None:
        """Write what is pending (a failure keeps it for the next flush or the close)."""
        with self._lock:
            if not self._pending or self.closed:
                return
            self._join_parts()
            batch, self._pending = self._pending, []
            try:
                with self._uow.statements() as uow:
                    appended = uow.run_log.append(self._user_id, self.run_id, batch)
                    uow.commit()
            except DatabaseError:
                self._pending = batch + self._pending
                log.warning("could not append run events yet", extra={"run_id": str(self.run_id)})
                return
            finally:
                self._last_flush = time.monotonic()
            if not appended:
                self.closed = True

    def close(self, done: RunFinish, final: Sequence[ev.Event]) -> bool:
        """Close the run with its last events in one statement; False if it was closed
        elsewhere. Raises :class:`DatabaseError` when the database cannot be reached (the
        caller retries: nothing is written until it succeeds)."""
        with self._lock:
            self._join_parts()
            events = list(self._pending)
            seq = self._seq
            for event in final:
                seq += 1
                events.append(LoggedEvent(seq, event.type, _payload(event)))
            with self._uow.statements() as uow:
                closed = uow.run_log.finish(done, events)
                uow.commit()
            self._seq = seq
            self._pending = []
            self.closed = True
            return closed


def _storable(text: str) -> str:
    """A model's text as PostgreSQL stores it (no NUL, no lone surrogate), nothing else lost."""
    if "\x00" in text or not is_valid_unicode(text):
        return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return text


def _delta(event: ev.TextDelta) -> JsonObject:
    """``_payload`` of a text delta, without its text (the parts are joined later), built
    directly: a delta is the most frequent event."""
    return {"type": event.type, "run_id": str(event.run_id), "text": ""}


def _payload(event: ev.Event) -> JsonObject:
    """The event as JSON the log can store, whatever a model or tool put in it."""
    value = storable_json(event.to_dict())
    assert isinstance(value, dict)
    return dict(value)


class Flusher:
    """One thread per process writing the pending tail of every run's log on time."""

    def __init__(self, tick_seconds: float = 0.02) -> None:
        self._tick = tick_seconds
        self._lock = threading.Lock()
        self._writers: set[RunEventWriter] = set()
        self._thread: threading.Thread | None = None

    def schedule(self, writer: RunEventWriter) -> None:
        with self._lock:
            self._writers.add(writer)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="jarvis-run-log-flusher", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self._tick)
            with self._lock:
                writers = list(self._writers)
                if not writers:
                    self._thread = None
                    return
            for writer in writers:
                if writer.due():
                    writer.flush()
                # Pending events not yet due stay scheduled. Checked under the flusher's lock:
                # an emit racing with this check re-schedules its writer after the discard.
                with self._lock:
                    if writer.idle():
                        self._writers.discard(writer)


def follow(
    uow: UnitOfWorkFactory,
    watcher: EventWatcher | None,
    user_id: uuid.UUID,
    run_id: uuid.UUID,
    after: int = 0,
    *,
    until: float | None = None,
) -> Iterator[LoggedEvent]:
    """The run's events after ``after``, then each new one as it is logged, until the
    terminal event (or the monotonic deadline ``until``). :class:`NotFoundError` when the run
    is not the user's. Each poll reads the new events and the run's status in one statement,
    so a run that is over ends the iteration when its log is exhausted: one from before the
    log existed, or a cursor already past its last event (a ``Last-Event-ID`` from the
    future)."""
    watch_cm: AbstractContextManager[Watch | None] = (
        watcher.watch(RUN_EVENTS_CHANNEL, str(run_id)) if watcher is not None else nullcontext()
    )
    with watch_cm as watch:
        while True:
            if watch is not None:
                watch.clear()
            batch, status = _poll(uow, user_id, run_id, after)
            for event in batch:
                after = event.seq
                yield event
                if event.type in ev.TERMINAL_TYPES:
                    return
            if batch:
                continue
            if status != "running":
                return
            if until is not None and time.monotonic() >= until:
                return
            wait = POLL_SECONDS_LISTENING if watcher and watcher.listening else POLL_SECONDS
            if watch is not None:
                watch.wait(wait)
            else:
                time.sleep(wait)


async def follow_async(
    uow: UnitOfWorkFactory,
    watcher: EventWatcher | None,
    user_id: uuid.UUID,
    run_id: uuid.UUID,
    after: int = 0,
    *,
    until: float | None = None,
) -> AsyncIterator[LoggedEvent]:
    """:func:`follow` for coroutines (the SSE endpoint): the database is read on worker
    threads (short calls); the waits between events hold no thread."""
    watch_cm: AbstractContextManager[Watch | None] = (
        watcher.watch(RUN_EVENTS_CHANNEL, str(run_id)) if watcher is not None else nullcontext()
    )
    with watch_cm as watch:
        while True:
            if watch is not None:
                watch.clear()
            batch, status = await anyio.to_thread.run_sync(_poll, uow, user_id, run_id, after)
            for event in batch:
                after = event.seq
                yield event
                if event.type in ev.TERMINAL_TYPES:
                    return
            if batch:
                continue
            if status != "running":
                return
            if until is not None and time.monotonic() >= until:
                return
            wait = POLL_SECONDS_LISTENING if watcher and watcher.listening else POLL_SECONDS
            if watch is not None:
                await watch.wait_async(wait)
            else:
                await anyio.sleep(wait)


def _poll(
    uow: UnitOfWorkFactory, user_id: uuid.UUID, run_id: uuid.UUID, after: int
) -> tuple[list[LoggedEvent], str]:
    """The events after ``after`` and the run's status (:class:`NotFoundError` when the run
    is not the user's)."""
    with uow.statements() as u:
        batch, status = u.run_log.read_with_status(user_id, run_id, after)
    if status is None:
        raise NotFoundError("That run does not exist.")
    return batch, status
