"""OpenAI-compatible endpoints: any OpenAI client can talk to Jarvis.

    client = openai.OpenAI(base_url="http://localhost:8501/api/v1/openai/v1", api_key="jrv_...")
    client.chat.completions.create(model="offline/offline-deterministic", messages=[...])

``GET /openai/v1/models`` lists the models the caller can use (``provider/model``);
``POST /openai/v1/chat/completions`` answers (or streams, ``stream: true``) the last user
message as a Jarvis run, with the earlier messages as context, under the caller's budget,
limits, tool permissions and usage recording (:mod:`jarvis.services.chat.completions`).
Errors on these routes take OpenAI's shape, ``{"error": {"message", "type", "param",
"code"}}``, so OpenAI SDKs raise their usual exceptions; the rest of the API keeps
problem+json.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from jarvis import errors as e
from jarvis.api.deps import CurrentUser, ServicesDep
from jarvis.api.problems import error_code
from jarvis.api.sse import PING_SECONDS
from jarvis.services.chat.completions import (
    ChatTurn,
    Completion,
    CompletionDelta,
    CompletionEnd,
    CompletionUsage,
    ModelEntry,
    StartedCompletion,
)

log = logging.getLogger(__name__)

PREFIX = "/openai/v1"

#: Most specific first: the first class an error is an instance of decides the answer.
_STATUS: tuple[tuple[type[e.JarvisError], int, str], ...] = (
    (e.ValidationError, 400, "invalid_request_error"),
    (e.NotFoundError, 404, "not_found_error"),
    (e.ConflictError, 409, "conflict_error"),
    (e.AccountLockedError, 429, "rate_limit_error"),
    (e.AccountDisabledError, 403, "permission_error"),
    (e.PermissionDeniedError, 403, "permission_error"),
    (e.AuthError, 401, "authentication_error"),
    (e.BudgetExceededError, 402, "insufficient_quota"),
    (e.RateLimitError, 429, "rate_limit_error"),
    (e.LimitExceededError, 429, "rate_limit_error"),
    (e.DatabaseError, 503, "server_error"),
    (e.ProviderRateLimitError, 429, "rate_limit_error"),
    (e.ProviderTimeoutError, 504, "server_error"),
    (e.ProviderError, 502, "server_error"),
)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


def error_of(error: e.JarvisError) -> tuple[int, ErrorDetail]:
    """The status and OpenAI error body for a Jarvis error (server-side failures other than
    the database's and the provider's keep their class's default wording)."""
    status, kind = next(
        ((s, k) for cls, s, k in _STATUS if isinstance(error, cls)), (500, "server_error")
    )
    safe = status < 500 or isinstance(error, e.DatabaseError | e.ProviderError)
    message = str(error) if safe else type(error).default_message
    field = getattr(error, "field", None)
    return status, ErrorDetail(
        message=message,
        type=kind,
        param=str(field) if field else None,
        code=error_code(type(error)),
    )


def error_response(
    status: int, detail: ErrorDetail, *, retry_after: float | None = None
) -> JSONResponse:
    headers = {}
    if retry_after:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="jarvis"'
    return JSONResponse(ErrorBody(error=detail).model_dump(), status_code=status, headers=headers)


def _jarvis_error(error: e.JarvisError) -> JSONResponse:
    status, detail = error_of(error)
    if status >= 500:
        log.warning("openai-compatible request failed", extra={"error": type(error).__name__})
    retry_after = getattr(error, "retry_after", None)
    return error_response(status, detail, retry_after=float(retry_after) if retry_after else None)


class OpenAIRoute(APIRoute):
    """A route whose errors (authentication and input included) take OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except e.JarvisError as exc:
                return _jarvis_error(exc)
            except RequestValidationError as exc:
                first: dict[str, Any] = next(iter(exc.errors()), {})
                where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
                # The message only: pydantic's "input" would echo the (possibly secret) value.
                message = f"{where}: {first.get('msg', 'invalid')}" if where else "Invalid body."
                return error_response(
                    400,
                    ErrorDetail(
                        message=message[:500],
                        type="invalid_request_error",
                        param=where or None,
                        code="validation_error",
                    ),
                )
            except StarletteHTTPException as exc:
                text = exc.detail if isinstance(exc.detail, str) else "Request failed."
                return error_response(
                    exc.status_code,
                    ErrorDetail(message=text, type="invalid_request_error", code=None),
                )

        return route


router = APIRouter(
    prefix=PREFIX,
    tags=["openai-compatible"],
    route_class=OpenAIRoute,
    responses={
        status: {"model": ErrorBody}
        for status in (400, 401, 402, 403, 404, 409, 429, 500, 502, 503, 504)
    },
)


# -- models ------------------------------------------------------------------------------------


class Model(BaseModel):
    id: str = Field(examples=["openai/gpt-4o-mini"])
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str

    @classmethod
    def of(cls, m: ModelEntry) -> Model:
        return cls(id=m.id, owned_by=m.provider)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def turn(self) -> ChatTurn:
        if self.content is None or isinstance(self.content, str):
            return ChatTurn(self.role, self.content or "")
        if any(p.type != "text" for p in self.content):
            raise e.ValidationError("Only text content is supported.", field="messages")
        return ChatTurn(self.role, "".join(p.text or "" for p in self.content))


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; ``temperature``, ``max_tokens``, ``tools`` and the like are accepted
    and ignored (Jarvis's run settings, limits and its own tools apply)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=300, examples=["offline/offline-deterministic"])
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only one choice is supported.")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, u: CompletionUsage) -> Usage:
        return cls(
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            total_tokens=u.total_tokens,
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage

    @classmethod
    def of(cls, c: Completion) -> ChatCompletionResponse:
        return cls(
            id=completion_id(c.started),
            created=c.started.created,
            model=c.started.model,
            choices=[
                Choice(message=AssistantMessage(content=c.text), finish_reason=c.finish_reason)
            ],
            usage=Usage.of(c.usage),
        )


def completion_id(started: StartedCompletion) -> str:
    return f"chatcmpl-{started.run_id.hex}"


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `chat.completion`, or with `stream: true` Server-Sent Events: "
        "`data: <chat.completion.chunk>` frames, then `data: [DONE]`.",
        "model": ChatCompletionResponse,
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get("/models", response_model=ModelList)
def list_models(user: CurrentUser, services: ServicesDep) -> ModelList:
    """The models you can use: offline always, others once you stored their provider's key."""
    return ModelList(data=[Model.of(m) for m in services.completions.models(user)])


@router.get("/models/{model_id:path}", response_model=Model)
def get_model(model_id: str, user: CurrentUser, services: ServicesDep) -> Model:
    found = next((m for m in services.completions.models(user) if m.id == model_id), None)
    if found is None:
        raise e.NotFoundError(f"The model {model_id[:200]!r} does not exist or you cannot use it.")
    return Model.of(found)


# -- chat completions ------------------------------------------------------------------------


@router.post("/chat/completions", response_model=None, responses=STREAM_DOC)
async def chat_completions(
    body: ChatCompletionRequest, user: CurrentUser, services: ServicesDep
) -> Response:
    """Answer the last user message as a Jarvis run (earlier messages are its context)."""
    turns = [m.turn() for m in body.messages]
    started = await run_in_threadpool(services.completions.start, user, body.model, turns)
    headers = {
        "X-Jarvis-Run-Id": str(started.run_id),
        "X-Jarvis-Conversation-Id": str(started.conversation_id),
    }
    if not body.stream:
        done = await services.completions.complete(user, started)
        return JSONResponse(ChatCompletionResponse.of(done).model_dump(), headers=headers)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return EventSourceResponse(
        _chunks(services.completions.stream(user, started), started, include_usage),
        ping=PING_SECONDS,
        sep="\n",
        headers={**headers, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _chunks(
    pieces: AsyncIterator[CompletionDelta | CompletionEnd],
    started: StartedCompletion,
    include_usage: bool,
) -> AsyncIterator[dict[str, str]]:
    """``chat.completion.chunk`` frames; a failure mid-answer becomes an error frame (OpenAI
    SDKs raise it), and ``[DONE]`` ends the stream either way."""
    base = {
        "id": completion_id(started),
        "object": "chat.completion.chunk",
        "created": started.created,
        "model": started.model,
    }

    def frame(data: dict[str, Any]) -> dict[str, str]:
        return {"data": json.dumps(data, separators=(",", ":"), ensure_ascii=False)}

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, str]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return frame({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for piece in pieces:
            if isinstance(piece, CompletionDelta):
                yield chunk({"content": piece.text})
            else:
                yield chunk({}, piece.finish_reason)
                if include_usage:
                    yield frame(
                        {**base, "choices": [], "usage": Usage.of(piece.usage).model_dump()}
                    )
    except e.JarvisError as exc:
        _status, detail = error_of(exc)
        yield frame(ErrorBody(error=detail).model_dump())
    yield {"data": "[DONE]"}
