"""The background job queue: procrastinate on PostgreSQL (its schema ``procrastinate``, 0021).

Two tasks, both thin: ``jarvis.run_job(job_id, user_id)`` hands a user's job to the jobs
service (which runs it as that user under row-level security and records its progress in
``jobs``), and ``jarvis.purge_sign_in_state``, deferred daily by procrastinate's periodic
scheduler, purges ended sign-in state. Queue rows hold ids only, never user data.

Both the deferring side (pages, API, CLI: a small synchronous pool opened on first use) and the
worker connect as the app role with ``search_path=procrastinate``. The worker is procrastinate's
own asyncio worker; synchronous tasks run in its threads. :meth:`JobQueue.start` runs it in a
daemon thread of this process (the app's default, ``JARVIS_JOB_WORKER=in-process``);
:meth:`JobQueue.run_worker` in the foreground (``jarvis worker``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable

import procrastinate
from procrastinate import exceptions as queue_errors

from jarvis.db.engine import libpq_url
from jarvis.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

QUEUE_SCHEMA = "procrastinate"
RUN_JOB = "jarvis.run_job"
PURGE_SIGN_IN_STATE = "jarvis.purge_sign_in_state"
#: Every day at 03:17 (the worker's clock, UTC in the image).
PURGE_CRON = "17 3 * * *"

RunJob = Callable[[uuid.UUID, uuid.UUID], None]
Purge = Callable[[], object]


class JobQueue:
    """Defer jobs and run workers (see the module)."""

    def __init__(
        self,
        url: str,
        *,
        run_job: RunJob,
        purge: Purge,
        concurrency: int = 2,
        poll_seconds: float = 5.0,
    ) -> None:
        self._conninfo = libpq_url(url)
        self._run_job = run_job
        self._purge = purge
        self._concurrency = max(1, concurrency)
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()  # the deferring pool
        self._worker_lock = threading.Lock()  # the worker's loop, task and stop request
        self._deferrer: procrastinate.App | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- the procrastinate app ------------------------------------------------------------

    def _app(self, max_size: int) -> procrastinate.App:
        connector = procrastinate.PsycopgConnector(
            conninfo=self._conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"options": f"-c search_path={QUEUE_SCHEMA}"},
        )
        app = procrastinate.App(connector=connector)
        run_job, purge = self._run_job, self._purge

        def jarvis_run_job(job_id: str, user_id: str) -> None:
            run_job(uuid.UUID(job_id), uuid.UUID(user_id))

        def jarvis_purge(timestamp: int) -> None:  # noqa: ARG001 (the scheduled time)
            purge()

        app.task(name=RUN_JOB)(jarvis_run_job)
        task = app.task(name=PURGE_SIGN_IN_STATE, queueing_lock=PURGE_SIGN_IN_STATE)(jarvis_purge)
        app.periodic(cron=PURGE_CRON, periodic_id="daily")(task)
        return app

    # -- deferring ------------------------------------------------------------------------

    def defer(self, job_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Queue ``jarvis.run_job`` for a job row already committed."""
        try:
            with self._lock:
                if self._deferrer is None:
                    self._deferrer = self._app(max_size=2).open()
                deferrer = self._deferrer
            deferrer.configure_task(RUN_JOB).defer(job_id=str(job_id), user_id=str(user_id))
        except (queue_errors.ProcrastinateException, OSError) as exc:
            raise DatabaseUnavailableError() from exc

    def defer_purge(self) -> None:
        """Queue the sign-in state purge now (besides its daily schedule)."""
        with self._lock:
            if self._deferrer is None:
                self._deferrer = self._app(max_size=2).open()
            deferrer = self._deferrer
        deferrer.configure_task(PURGE_SIGN_IN_STATE).defer(timestamp=0)

    # -- working --------------------------------------------------------------------------

    async def work(
        self, *, wait: bool = True, signals: bool = False, opened: Callable[[], None] | None = None
    ) -> None:
        """Run a worker until cancelled (``wait``) or until the queue is empty; ``opened`` is
        called once its connection pool is open."""
        app = self._app(max_size=self._concurrency + 3)
        async with app.open_async():
            if opened is not None:
                opened()
            await app.run_worker_async(
                concurrency=self._concurrency,
                wait=wait,
                install_signal_handlers=signals,
                fetch_job_polling_interval=self._poll_seconds,
                name=f"jarvis-{uuid.uuid4().hex[:8]}",
                delete_jobs="successful",
            )

    def run_worker(self) -> None:
        """Work in the foreground until SIGINT / SIGTERM (``jarvis worker``)."""
        asyncio.run(self.work(signals=True))

    def start(self) -> None:
        """Work in a daemon thread of this process (stopped by :meth:`stop`)."""
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._thread_main, name="jarvis-jobs", daemon=True)
        self._thread.start()

    def _thread_main(self) -> None:
        # The worker is cancelled only once its pool is open: a cancel that lands while the pool
        # opens leaves the pool's own tasks running, and the thread would never end.
        async def main() -> None:
            def opened() -> None:
                with self._worker_lock:
                    if self._stopping:
                        raise asyncio.CancelledError
                    self._loop = asyncio.get_running_loop()
                    self._task = asyncio.current_task()

            await self.work(opened=opened)

        try:
            asyncio.run(main())
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the job worker stopped")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop this process's worker (running jobs get ``timeout`` to finish) and the
        deferring pool."""
        with self._worker_lock:
            self._stopping = True
            loop, task, thread = self._loop, self._task, self._thread
            self._loop = self._task = None
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        if thread is not None:
            thread.join(timeout)
        self._thread = None
        with self._lock:
            if self._deferrer is not None:
                self._deferrer.close()
                self._deferrer = None
