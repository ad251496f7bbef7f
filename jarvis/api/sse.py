"""A run's event log as Server-Sent Events: ``id: <seq>`` + ``data: <event JSON>`` per event.

A client that lost the connection reconnects with ``Last-Event-ID: <seq>`` and gets every later
event once, in order (the log is replayed from there, then followed). Closing the stream never
stops the run; ``POST /runs/{id}/cancel`` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette.sse import EventSourceResponse

from jarvis.services.chat.runs import FollowedEvent

#: A comment line this often keeps proxies from closing a quiet stream.
PING_SECONDS = 15


def last_event_id(header: str | None) -> int:
    """The sequence number to resume after (0: from the start)."""
    try:
        return max(0, int((header or "0").strip()))
    except ValueError:
        return 0


def event_stream(events: AsyncIterator[FollowedEvent]) -> EventSourceResponse:
    async def frames() -> AsyncIterator[dict[str, str]]:
        async for followed in events:
            yield {"id": str(followed.seq), "data": followed.event.to_json()}

    return EventSourceResponse(
        frames(),
        ping=PING_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
