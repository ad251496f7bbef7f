"""Request body size limit, as a pure ASGI middleware (before any parsing happens).

A declared ``Content-Length`` over the limit is refused at once; a streamed (chunked) body is
counted as it arrives and refused as soon as it passes the limit. Either way the client gets a
413 problem+json and the route never runs.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jarvis.api.problems import PROBLEM_JSON


class BodyTooLarge(Exception):  # noqa: N818 - internal signal, answered with a 413
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        exceeded = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def limited_send(message: Message) -> None:
            nonlocal answered
            if exceeded:
                # The app caught the signal while parsing (FastAPI answers "error parsing the
                # body", 400): the client gets the 413 instead, and the app's reply is dropped.
                if not answered and message["type"] == "http.response.start":
                    answered = True
                    await _too_large(send, self.max_bytes)
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, limited_receive, limited_send)
        except BodyTooLarge:
            if not answered:
                answered = True
                await _too_large(send, self.max_bytes)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request body too large",
            "status": 413,
            "detail": f"The request body is over the limit of {limit:,} bytes.",
            "code": "request_body_too_large",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
