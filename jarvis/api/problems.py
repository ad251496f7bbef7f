"""Errors as RFC 9457 ``application/problem+json``, in one place.

Every :class:`jarvis.errors.JarvisError` maps to a status and a stable ``code`` (the error
tree's class, in snake case); the ``detail`` is the error's own message, which the tree
guarantees is safe to show. Anything else becomes a bare 500: no stack trace, no exception
text, no SQL, no path ever reaches a client (the log keeps the exception type).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from jarvis import errors as e

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

#: Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[e.JarvisError], int], ...] = (
    (e.ValidationError, 422),
    (e.NotFoundError, 404),
    (e.ConflictError, 409),
    (e.AccountLockedError, 429),
    (e.InvalidCredentialsError, 401),
    (e.TokenError, 401),
    (e.AccountDisabledError, 403),
    (e.PermissionDeniedError, 403),
    (e.AuthError, 401),
    (e.RateLimitError, 429),
    (e.LimitExceededError, 429),
    (e.DatabaseUnavailableError, 503),
    (e.DatabaseError, 503),
    (e.ProviderTimeoutError, 504),
    (e.ProviderError, 502),
    (e.ToolError, 400),
    (e.CryptoError, 500),
    (e.ConfigError, 500),
)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    502: "Upstream provider error",
    503: "Service unavailable",
    504: "Upstream timeout",
}


class FieldProblem(BaseModel):
    """One invalid input field."""

    field: str = Field(description="Where the problem is (a JSON path such as body.title).")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with Jarvis's stable error ``code``."""

    type: str = Field(default="about:blank", description="A URI naming the problem type.")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code, e.g. not_found_error.")
    errors: list[FieldProblem] | None = None
    retry_after: int | None = Field(default=None, description="Seconds to wait (also a header).")


def error_code(error: type[BaseException]) -> str:
    """``NotFoundError`` -> ``not_found_error``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", error.__name__).lower()


def status_of(error: e.JarvisError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500


def problem_response(
    status: int,
    detail: str,
    code: str,
    *,
    errors: Sequence[FieldProblem] | None = None,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    wait = max(1, math.ceil(retry_after)) if retry_after else None
    body = Problem(
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code,
        errors=list(errors) if errors else None,
        retry_after=wait,
    )
    all_headers = dict(headers or {})
    if wait is not None:
        all_headers["Retry-After"] = str(wait)
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", 'Bearer realm="jarvis"')
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=all_headers,
    )


def jarvis_problem(error: e.JarvisError) -> JSONResponse:
    status = status_of(error)
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, e.DatabaseUnavailableError):
        retry_after = retry_after or 1
    field = getattr(error, "field", None)
    errors = [FieldProblem(field=str(field), message=str(error))] if field else None
    detail = str(error) if status < 500 or isinstance(error, e.DatabaseError) else _safe(error)
    return problem_response(
        status,
        detail,
        error_code(type(error)),
        errors=errors,
        retry_after=float(retry_after) if retry_after else None,
    )


def _safe(error: e.JarvisError) -> str:
    # Server-side failures keep their class's default wording (never a specific detail).
    return type(error).default_message


def _field_path(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc) or "body"


async def _on_jarvis_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.JarvisError)
    if status_of(exc) >= 500:
        log.warning("request failed", extra={"error": type(exc).__name__})
    return jarvis_problem(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        # The message only: pydantic's "input" would echo the (possibly secret) value back.
        FieldProblem(field=_field_path(err.get("loc", ())), message=str(err.get("msg", "")))
        for err in exc.errors()
    ][:50]
    return problem_response(
        422, "The request is not valid.", "validation_error", errors=problems or None
    )


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(status, "Error")
    code = _TITLES.get(status, "error").lower().replace(" ", "_")
    return problem_response(status, detail, code, headers=dict(exc.headers or {}))


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error in an API request", extra={"error": type(exc).__name__})
    return problem_response(500, "Something went wrong on our side.", "internal_error")


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(e.JarvisError, _on_jarvis_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_doc(status: int, description: str | None = None) -> dict[str, Any]:
    """One ``responses=`` entry: a problem+json body (``model`` also puts :class:`Problem` in
    the schema's components, under application/json, which FastAPI always documents)."""
    return {
        "model": Problem,
        "description": description or _TITLES[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


#: For route ``responses=``: the problem schema documented for the usual error statuses
#: (400: a body that is not UTF-8 JSON at all; 413: over ``JARVIS_API_MAX_BODY_BYTES``).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: problem_doc(status) for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}

_PROBLEM_REF = "#/components/schemas/Problem"


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers send: FastAPI files a response model
    under the route's media type (``application/json``); errors are ``application/problem+json``.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        json_body = content.get("application/json", {})
                        if json_body.get("schema", {}).get("$ref") == _PROBLEM_REF:
                            content[PROBLEM_JSON] = content.pop("application/json")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
