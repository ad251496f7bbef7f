"""OpenAI embeddings: ``text-embedding-3-small`` shortened to 384 dimensions (the user's key)."""

from __future__ import annotations

from typing import Any

from jarvis.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from jarvis.llm.embedders.base import MODEL_DIMS, OPENAI_MODEL, describe_model, unit


def translate_openai_error(exc: Exception) -> ProviderError:
    """Map an ``openai`` SDK exception to the Jarvis error tree (never echoes the key)."""
    import openai

    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderAuthError(provider="openai")
    if isinstance(exc, openai.RateLimitError):
        return ProviderRateLimitError(provider="openai")
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeoutError(provider="openai")
    if isinstance(
        exc, openai.BadRequestError | openai.NotFoundError | openai.UnprocessableEntityError
    ):
        return ProviderBadRequestError(provider="openai")
    if isinstance(exc, openai.InternalServerError | openai.APIConnectionError):
        return ProviderServerError(provider="openai")
    return ProviderError(provider="openai")


class OpenAIEmbedder:
    """``text-embedding-3-small`` shortened to 384 dimensions (the API does the shortening)."""

    model_name = OPENAI_MODEL
    label = describe_model(OPENAI_MODEL)
    lexical = False
    dim = MODEL_DIMS[OPENAI_MODEL]
    api_model = "text-embedding-3-small"
    batch_size = 256

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        client: Any = None,
    ) -> None:
        if client is None:
            import openai

            client = openai.OpenAI(
                api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
            )
        self._client = client

    def embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[start : start + self.batch_size]]
            try:
                response = self._client.embeddings.create(
                    model=self.api_model, input=batch, dimensions=self.dim
                )
            except openai.OpenAIError as exc:
                raise translate_openai_error(exc) from exc
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch) or any(len(d.embedding) != self.dim for d in data):
                raise ProviderBadRequestError(
                    "The embedding server returned vectors of the wrong size.", provider="openai"
                )
            out.extend(unit(d.embedding) for d in data)
        return out
