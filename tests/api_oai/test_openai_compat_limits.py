"""The user's limits hold for OpenAI clients too: messages per minute, with Retry-After."""

from __future__ import annotations

import openai
import pytest


@pytest.fixture
def oai_settings() -> dict[str, object]:
    return {"messages_per_minute": 1}


def test_messages_per_minute_is_429_with_retry_after(oai: openai.OpenAI) -> None:
    ask = {"model": "offline", "messages": [{"role": "user", "content": "hi"}]}
    assert oai.chat.completions.create(**ask).choices[0].message.content  # type: ignore[call-overload]
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(**ask)  # type: ignore[call-overload]
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"]
    assert "too fast" in caught.value.message
