"""What every network adapter does around one model turn: an ``llm.call`` span, error
translation, and retries of transient failures while nothing has been streamed yet."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator, Iterator

from opentelemetry.trace import Span, Status, StatusCode

from jarvis import tracing
from jarvis.errors import ProviderError
from jarvis.llm.base import Finished, StreamEvent, ToolCallsReady, UsageReport
from jarvis.llm.errors import RetryPolicy, give_up, translate_error

log = logging.getLogger(__name__)

Attempt = Callable[[], Generator[StreamEvent, None, None]]


def guarded_stream(
    attempt: Attempt,
    *,
    provider: str,
    model: str,
    policy: RetryPolicy,
    secret: str | None = None,
) -> Iterator[StreamEvent]:
    """Run ``attempt()`` (one HTTP call, yielding port events) with retries and a span.

    A failure before the first event is retried when it is a rate limit, a server error or a
    timeout (``policy``); after output has been streamed it is raised at once, because the
    caller has shown it already. The span never carries message text.
    """
    span = tracing.start_span("llm.call", {"llm.provider": provider, "llm.model": model})
    number = 0
    status = "error"  # until the stream ends normally
    try:
        while True:
            number += 1
            emitted = False
            try:
                with contextlib.closing(attempt()) as events:
                    for event in events:
                        _record(span, event)
                        emitted = True
                        yield event
                status = "ok"
                return
            except GeneratorExit:
                status = "cancelled"
                raise
            except Exception as exc:
                err = translate_error(exc, provider, secret=secret)
                if type(err) is ProviderError:  # not an SDK error: a bug worth a traceback
                    log.warning("unexpected %s provider failure", provider, exc_info=True)
                if not emitted and policy.should_retry(err, number):
                    delay = policy.delay(number, err)
                    span.add_event(
                        "retry",
                        {"error.type": type(err).__name__, "attempt": number, "delay_s": delay},
                    )
                    policy.sleep(delay)
                    continue
                final = err if emitted else give_up(err, number)
                status = "error"
                tracing.mark_error(span, final)
                raise final from exc
    finally:
        span.set_attribute("llm.attempts", number)
        span.set_attribute("llm.status", status)
        if status == "ok":
            span.set_status(Status(StatusCode.OK))
        span.end()


def _record(span: Span, event: StreamEvent) -> None:
    if isinstance(event, UsageReport):
        usage = event.usage
        tracing.set_attributes(
            span,
            {
                "llm.input_tokens": usage.input_tokens,
                "llm.output_tokens": usage.output_tokens,
                "llm.cache_read_tokens": usage.cache_read_tokens,
                "llm.cache_write_tokens": usage.cache_write_tokens,
            },
        )
    elif isinstance(event, ToolCallsReady):
        span.set_attribute("llm.tool_calls", len(event.calls))
    elif isinstance(event, Finished):
        span.set_attribute("llm.stop_reason", event.stop_reason)
