"""A background job in a page: a progress bar that updates every second while it runs, then
the finished job for the page to show its summary or error.

    if st.button("Import"):
        with show_errors():
            remember_job("graph_import_job", jobs.import_graph(principal, data, fmt))
    job = follow_job(jobs, principal, "graph_import_job", on_finish=clear_caches)
    if job is not None:
        ...  # job.state, job.summary, job.error

The job's id lives in the session under the page's key, so leaving the page and coming back
(or reloading) finds the job again; the work itself runs on a worker either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import streamlit as st

from jarvis.errors import NotFoundError
from jarvis.identity import Principal
from jarvis.services.jobs import JobService, JobView


def remember_job(key: str, job: JobView) -> None:
    """Follow ``job`` on this page (under the page's session key)."""
    st.session_state[key] = job.id


def follow_job(
    jobs: JobService,
    principal: Principal,
    key: str,
    *,
    on_finish: Callable[[], None] | None = None,
) -> JobView | None:
    """The finished job under ``key`` (None while none or while it runs: then a progress bar
    that updates itself is drawn). The first time a job is seen finished, ``on_finish`` runs
    and the page reruns, so what the job changed shows everywhere on it."""
    job_id = st.session_state.get(key)
    if not isinstance(job_id, uuid.UUID):
        return None
    try:
        job = jobs.status(principal, job_id)
    except NotFoundError:
        st.session_state.pop(key, None)
        return None
    if not job.finished:
        _progress(jobs, principal, key, on_finish)
        return None
    if st.session_state.get(f"{key}_seen") != job.id:
        st.session_state[f"{key}_seen"] = job.id
        if on_finish is not None:
            on_finish()
        st.rerun()
    return job


def show_job_outcome(job: JobView | None, *, done: str, failed: str) -> None:
    """A finished job's summary (``done`` when it has none) or error (``failed``)."""
    if job is not None and job.state == "succeeded":
        st.success(job.summary or done)
    elif job is not None:
        st.error(job.error or failed)


@st.fragment(run_every=1)
def _progress(
    jobs: JobService, principal: Principal, key: str, on_finish: Callable[[], None] | None
) -> None:
    job_id = st.session_state.get(key)
    if not isinstance(job_id, uuid.UUID):
        return
    job = jobs.status(principal, job_id)
    if job.finished:
        st.session_state[f"{key}_seen"] = job.id
        if on_finish is not None:
            on_finish()
        st.rerun()  # the whole page: it shows the result
    st.progress(job.fraction, text=job.progress_text)
