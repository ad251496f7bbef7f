"""The app process's run workers: a bounded pool that executes admitted runs, and a supervisor.

* Runs execute on :class:`RunWorkers`' thread pool (size ``JARVIS_RUN_WORKERS``), never in a
  page's script thread, so leaving or reloading a page never touches them.
* The supervisor thread keeps this process's heartbeat (``run_workers``), fails the runs of
  processes that stopped beating (any process does it for all: within about
  :data:`STALE_AFTER`), and polls the cancel requests of its own runs every second (a
  ``NOTIFY`` on ``jarvis_run_cancel`` usually stops them sooner).
* ``inline=True`` (tests on one rolled-back connection) executes each run in the caller's thread
  before :meth:`submit` returns, with no supervisor.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from jarvis.db.notify import RUN_CANCEL_CHANNEL, Notifier
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import JarvisError

log = logging.getLogger(__name__)

#: How often a process refreshes its heartbeat and sweeps dead processes' runs.
BEAT_SECONDS = 5.0
#: A process silent this long is dead: its running runs are failed.
STALE_AFTER = timedelta(seconds=30)
#: How often the supervisor checks its runs' cancel requests (NOTIFY is usually sooner).
CANCEL_POLL_SECONDS = 1.0
DEAD_PROCESS_REASON = "The server running this answer stopped; it was not finished."
SHUTDOWN_REASON = "The server was restarted while this answer was being written."
STOPPED = "Stopped."


class StopFlag:
    """A run's stop signal: set by Stop (from any process) or by a shutdown, with a reason."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = STOPPED
        self.status = "cancelled"

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, reason: str = STOPPED, status: str = "cancelled") -> None:
        if not self._event.is_set():
            self.reason, self.status = reason, status
        self._event.set()


Job = Callable[[StopFlag], None]


class RunWorkers:
    """Executes runs for this process and supervises them."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        size: int,
        notifier: Notifier | None = None,
        inline: bool = False,
        beat_seconds: float = BEAT_SECONDS,
    ) -> None:
        self._uow = uow
        self._beat_seconds = beat_seconds
        self._notifier = notifier
        self._inline = inline
        self.worker_id: uuid.UUID | None = None if inline else uuid.uuid4()
        self._pool = None if inline else ThreadPoolExecutor(size, thread_name_prefix="jarvis-run")
        self._flags: dict[uuid.UUID, StopFlag] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._registered = threading.Event()
        if notifier is not None:
            notifier.on(RUN_CANCEL_CHANNEL, self._on_cancel_notice)

    # -- running ------------------------------------------------------------------------------

    def submit(self, run_id: uuid.UUID, job: Job) -> None:
        """Execute ``job`` for ``run_id`` (now, inline, or on the pool)."""
        flag = StopFlag()
        with self._lock:
            self._flags[run_id] = flag
        if self._pool is None:
            self._execute(run_id, job, flag)
            return
        self._start_supervisor()
        self._pool.submit(self._execute, run_id, job, flag)

    def _execute(self, run_id: uuid.UUID, job: Job, flag: StopFlag) -> None:
        try:
            job(flag)
        except Exception:
            log.exception("run worker failed", extra={"run_id": str(run_id)})
        finally:
            with self._lock:
                self._flags.pop(run_id, None)

    def stop_locally(self, run_id: uuid.UUID, reason: str = STOPPED) -> bool:
        """Stop a run this process executes (True if it was here)."""
        with self._lock:
            flag = self._flags.get(run_id)
        if flag is None:
            return False
        flag.set(reason)
        return True

    def active(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._flags)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- supervision --------------------------------------------------------------------------

    def _on_cancel_notice(self, payload: str) -> None:
        try:
            self.stop_locally(uuid.UUID(payload.split(":", 1)[0]))
        except ValueError:
            return

    def _start_supervisor(self) -> None:
        with self._lock:
            if self._supervisor is not None and self._supervisor.is_alive():
                return
            self._supervisor = threading.Thread(
                target=self._supervise, name="jarvis-run-supervisor", daemon=True
            )
            self._supervisor.start()

    def start(self) -> None:
        """Register this process now and begin beating (an app process: its existence is
        known before its first run)."""
        if self._pool is not None:
            self.ensure_registered()
            self._start_supervisor()

    def ensure_registered(self) -> None:
        """Write this process's heartbeat row now unless it was written already. A run
        admitted before the supervisor's first beat would otherwise name a process with no
        row, which a concurrent admission or another process's sweep takes for a dead one
        (and fails the run)."""
        if self.worker_id is None or self._registered.is_set() or self._stop.is_set():
            return
        try:
            self._beat()
        except JarvisError:
            log.warning("run supervisor could not reach the database")

    def _beat(self) -> None:
        assert self.worker_id is not None
        with self._uow.statements() as uow:
            uow.run_log.beat(self.worker_id, socket.gethostname(), os.getpid())
            uow.commit()
        self._registered.set()

    def _supervise(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self._beat_and_sweep()
                next_beat = now + self._beat_seconds
            self._poll_cancels()
            self._stop.wait(min(CANCEL_POLL_SECONDS, self._beat_seconds))

    def _beat_and_sweep(self) -> None:
        try:
            self._beat()
            with self._uow() as uow:
                failed = uow.runs.fail_stale(datetime.now(UTC) - STALE_AFTER, DEAD_PROCESS_REASON)
                uow.commit()
            if failed:
                log.warning("failed the runs of a stopped process", extra={"runs": failed})
        except JarvisError:
            log.warning("run supervisor could not reach the database")

    def _poll_cancels(self) -> None:
        ids = self.active()
        if not ids:
            return
        try:
            with self._uow.statements() as uow:
                asked = uow.run_log.cancel_requested(ids)
        except JarvisError:
            return
        for run_id in asked:
            self.stop_locally(run_id)

    # -- shutdown -----------------------------------------------------------------------------

    def shutdown(self, wait_seconds: float = 5.0) -> None:
        """Stop accepting runs; the running ones end ``failed`` with a clear reason (the
        user can retry), then this process's heartbeat row is removed."""
        self._stop.set()
        with self._lock:
            flags = list(self._flags.values())
        for flag in flags:
            flag.set(SHUTDOWN_REASON, status="failed")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            deadline = time.monotonic() + wait_seconds
            while self.active() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.worker_id is not None:
            try:
                with self._uow.statements() as uow:
                    uow.run_log.retire(self.worker_id)
                    uow.commit()
            except JarvisError:
                log.warning("could not retire this process's heartbeat")
