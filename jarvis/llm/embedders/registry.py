"""Choosing embedders: the instance default, and any stored model by name (per-user keys)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from jarvis.errors import ConfigError
from jarvis.llm.embedders.base import (
    LEXICAL_MODEL,
    LOCAL_MODEL,
    OPENAI_MODEL,
    WORDLLAMA_MODEL,
    Embedder,
    canonical_model,
)
from jarvis.llm.embedders.lexical import LexicalEmbedder
from jarvis.llm.embedders.local import SentenceTransformerEmbedder
from jarvis.llm.embedders.openai import OpenAIEmbedder
from jarvis.llm.embedders.wordllama import WordLlamaEmbedder

#: Returns (api_key, base_url) of a user's OpenAI secret, or raises.
KeyLookup = Callable[[], tuple[str, str | None]]

#: The models that need no key (the instance default is one of them).
OFFLINE_MODELS = (WORDLLAMA_MODEL, LEXICAL_MODEL, LOCAL_MODEL)


def offline_embedder(name: str) -> Embedder:
    """A new embedder for an offline model name or alias (``wordllama``, ``lexical``,
    ``local``); models load lazily, on first use."""
    model = canonical_model(name)
    if model == WORDLLAMA_MODEL:
        return WordLlamaEmbedder()
    if model == LEXICAL_MODEL:
        return LexicalEmbedder()
    if model == LOCAL_MODEL:
        return SentenceTransformerEmbedder()
    raise ConfigError(f"Unknown offline embedding model {name!r} (wordllama, lexical or local).")


def default_embedder(name: str = "wordllama") -> Embedder:
    """The instance default (``Settings.embedder``): wordllama, meaning search offline."""
    return offline_embedder(name)


class EmbedderRegistry:
    """Embedders by stored model name (a user's chosen model, re-embedding)."""

    def __init__(self, default: Embedder, *, extra: Sequence[Embedder] = ()) -> None:
        self.default = default
        self._lock = threading.Lock()
        self._fixed: dict[str, Embedder] = {default.model_name: default}
        for embedder in extra:
            self._fixed[embedder.model_name] = embedder

    def names(self) -> list[str]:
        return [WORDLLAMA_MODEL, LEXICAL_MODEL, LOCAL_MODEL, OPENAI_MODEL]

    def register(self, embedder: Embedder) -> None:
        """Make another model available by its name (a test's second model, a plug-in)."""
        with self._lock:
            self._fixed[embedder.model_name] = embedder

    def get(self, model_name: str, openai_key: KeyLookup | None = None) -> Embedder:
        """The embedder for ``model_name``; OpenAI needs a key lookup for the acting user."""
        name = canonical_model(model_name)
        with self._lock:
            if name in self._fixed:
                return self._fixed[name]
            if name in OFFLINE_MODELS:
                return self._fixed.setdefault(name, offline_embedder(name))
        if name == OPENAI_MODEL:
            if openai_key is None:
                raise ConfigError(
                    "OpenAI embeddings need the user's OpenAI key (add it in Secrets)."
                )
            api_key, base_url = openai_key()
            return OpenAIEmbedder(api_key, base_url=base_url)
        raise ConfigError(f"Unknown embedding model {model_name!r}.")
