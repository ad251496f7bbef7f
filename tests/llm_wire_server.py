"""A local HTTP server that replays the streaming wire formats of OpenAI Chat Completions
and the Anthropic Messages API, so the real SDKs can be tested without the network.

    with WireServer() as server:
        server.script(Reply.error(429), Reply.sse(openai_text_chunks(["Hel", "lo"])))
        provider = OpenAIProvider("sk-test", base_url=server.url + "/v1")

Each request takes the next scripted :class:`Reply` (the last one repeats once the script is
used up); every request is recorded in ``server.requests`` (path, headers, JSON body).

``server.models(["gpt-4o", ...], key="sk-...")`` makes ``GET .../models`` answer like both
providers' model lists (OpenAI's and Anthropic's formats at once) for that key, and 401 for any
other key (``Authorization: Bearer`` or ``x-api-key``), whatever the script says.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    events: list[tuple[str | None, Any]] = field(default_factory=list)  # (event name, data)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    stall_after: int | None = None  # stop sending after this many events ...
    stall: float = 0.0  # ... for this many seconds (a read timeout mid-stream)
    pause: float = 0.0  # seconds between events (a model that writes slowly)
    raw: bytes | None = None  # send exactly these bytes as the body (an HTML page, nothing)
    content_type: str = "text/html; charset=utf-8"

    @classmethod
    def sse(cls, events: list[tuple[str | None, Any]], **kw: Any) -> Reply:
        return cls(events=events, **kw)

    @classmethod
    def page(cls, body: bytes, status: int = 200, **kw: Any) -> Reply:
        """Not a completion at all: e.g. a proxy's HTML page with status 200, or no body."""
        return cls(status=status, raw=body, **kw)

    @classmethod
    def error(cls, status: int, message: str = "boom", **kw: Any) -> Reply:
        body = {"error": {"message": message, "type": "error", "code": None}}
        return cls(status=status, body=body, **kw)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any


class WireServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._models: tuple[list[str], str, float] | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script = list(replies)
            self.requests.clear()

    def models(self, ids: list[str], *, key: str, delay: float = 0.0) -> None:
        """Serve ``GET .../models`` with ``ids`` to callers presenting ``key``, 401 to others,
        after ``delay`` seconds."""
        with self._lock:
            self._models = (list(ids), key, delay)

    def _model_list(self, headers: dict[str, str]) -> Reply | None:
        with self._lock:
            models = self._models
        if models is None:
            return None
        ids, key, delay = models
        if headers.get("authorization") != f"Bearer {key}" and headers.get("x-api-key") != key:
            body = {
                "error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            }
            return Reply(status=401, body=body, delay=delay)
        data = [
            {
                "id": model,
                "object": "model",
                "created": 1_700_000_000,
                "owned_by": "wire",
                "type": "model",
                "display_name": model,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for model in ids
        ]
        return Reply(
            body={
                "object": "list",
                "data": data,
                "has_more": False,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            },
            delay=delay,
        )

    def _next(self) -> Reply:
        with self._lock:
            if not self._script:
                return Reply.error(500, "no scripted reply")
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append(RecordedRequest(self.path, headers, None))
                listed = server._model_list(headers) if "/models" in self.path else None
                reply = listed or server._next()
                if reply.delay and server._stop.wait(reply.delay):
                    return
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(reply)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with server._lock:
                    server.requests.append(
                        RecordedRequest(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body
                        )
                    )
                reply = server._next()
                if reply.delay and server._stop.wait(reply.delay):
                    return
                # the client may have given up already (timeout test)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(reply)

            def _send(self, reply: Reply) -> None:
                if reply.raw is not None:
                    self.send_response(reply.status)
                    self.send_header("content-type", reply.content_type)
                    self.send_header("content-length", str(len(reply.raw)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(reply.raw)
                    return
                if reply.status != 200 or not reply.events:
                    payload = json.dumps(reply.body if reply.body is not None else {}).encode()
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                for index, (name, data) in enumerate(reply.events):
                    if index == reply.stall_after and server._stop.wait(reply.stall):
                        return
                    if index and reply.pause and server._stop.wait(reply.pause):
                        return
                    text = data if isinstance(data, str) else json.dumps(data)
                    frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                    self.wfile.write(frame.encode())
                    self.wfile.flush()

        return Handler


# -- OpenAI chat.completion.chunk streams -------------------------------------------------


def _chunk(
    delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None
) -> dict[str, Any]:
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
    )
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-test",
        "choices": choices,
        "usage": usage,
    }


def openai_usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def openai_text_stream(
    pieces: list[str], usage: dict[str, Any] | None = None, finish: str = "stop"
) -> list[tuple[str | None, Any]]:
    events: list[tuple[str | None, Any]] = [(None, _chunk({"role": "assistant", "content": ""}))]
    events += [(None, _chunk({"content": piece})) for piece in pieces]
    events.append((None, _chunk({}, finish=finish)))
    if usage is not None:
        events.append((None, _chunk(None, usage=usage)))
    events.append((None, "[DONE]"))
    return events


def openai_tool_stream(
    calls: list[tuple[str, str, list[str]]],
    usage: dict[str, Any] | None = None,
    text: str | None = None,
) -> list[tuple[str | None, Any]]:
    """``calls``: (id, name, argument fragments); fragments of the calls are interleaved."""
    events: list[tuple[str | None, Any]] = [(None, _chunk({"role": "assistant", "content": text}))]
    for index, (call_id, name, _) in enumerate(calls):
        first = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        events.append((None, _chunk({"tool_calls": [first]})))
    longest = max(len(parts) for _, _, parts in calls)
    for step in range(longest):
        for index, (_, _, parts) in enumerate(calls):
            if step < len(parts):
                piece = {"index": index, "function": {"arguments": parts[step]}}
                events.append((None, _chunk({"tool_calls": [piece]})))
    events.append((None, _chunk({}, finish="tool_calls")))
    if usage is not None:
        events.append((None, _chunk(None, usage=usage)))
    events.append((None, "[DONE]"))
    return events


# -- Anthropic Messages streams -----------------------------------------------------------


def _message_start(input_tokens: int, cache_read: int = 0, cache_write: int = 0) -> tuple[str, Any]:
    return (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": "claude-test",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": 1,
                    "cache_read_input_tokens": cache_read,
                    "cache_creation_input_tokens": cache_write,
                },
            },
        },
    )


def _message_end(stop_reason: str, output_tokens: int) -> list[tuple[str, Any]]:
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def anthropic_text_stream(
    pieces: list[str],
    *,
    input_tokens: int = 10,
    output_tokens: int = 5,
    cache_read: int = 0,
    cache_write: int = 0,
    stop_reason: str = "end_turn",
) -> list[tuple[str | None, Any]]:
    events: list[tuple[str | None, Any]] = [_message_start(input_tokens, cache_read, cache_write)]
    events.append(
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
    )
    events.append(("ping", {"type": "ping"}))
    for piece in pieces:
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events += _message_end(stop_reason, output_tokens)
    return events


def anthropic_tool_stream(
    calls: list[tuple[str, str, list[str]]],
    *,
    text: str | None = None,
    input_tokens: int = 20,
    output_tokens: int = 15,
    cache_read: int = 0,
    cache_write: int = 0,
) -> list[tuple[str | None, Any]]:
    events: list[tuple[str | None, Any]] = [_message_start(input_tokens, cache_read, cache_write)]
    index = 0
    if text:
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
            )
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for call_id, name, parts in calls:
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
                },
            )
        )
        for part in parts:
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    events += _message_end("tool_use", output_tokens)
    return events


# -- pytest helpers -------------------------------------------------------------------------


def fast_retry(attempts: int = 3) -> tuple[Any, list[float]]:
    """A RetryPolicy that records its delays instead of sleeping."""
    import random

    from jarvis.llm.errors import RetryPolicy

    delays: list[float] = []
    return RetryPolicy(
        attempts=attempts, base_delay=0.2, max_delay=2.0, sleep=delays.append, rng=random.Random(7)
    ), delays
