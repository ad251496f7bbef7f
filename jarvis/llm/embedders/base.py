"""The embedding port, the stored model names and the vector helpers every embedder shares.

Each embedder has its own dimension (wordllama 256, the others 384); a row stores the name of
the model that embedded it and searches only compare vectors of one model, so vectors of
different sizes never meet. A text with nothing to embed (the empty string) gives the zero
vector: it has no direction, so it is never stored and never compared (its cosine distance
would be NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

WORDLLAMA_MODEL = "wordllama/l2_supercat-256"
LEXICAL_MODEL = "lexical-hash-384-v1"
OPENAI_MODEL = "openai/text-embedding-3-small@384"
LOCAL_MODEL = "local/all-MiniLM-L6-v2"

#: Vector size of each stored model name.
MODEL_DIMS: dict[str, int] = {
    WORDLLAMA_MODEL: 256,
    LEXICAL_MODEL: 384,
    OPENAI_MODEL: 384,
    LOCAL_MODEL: 384,
}

#: Short names accepted wherever a model is chosen (CLI, settings).
MODEL_ALIASES: dict[str, str] = {
    "wordllama": WORDLLAMA_MODEL,
    "lexical": LEXICAL_MODEL,
    "openai": OPENAI_MODEL,
    "local": LOCAL_MODEL,
}


@runtime_checkable
class Embedder(Protocol):
    """The embedding port."""

    #: Stored with every row; only vectors with the same ``model_name`` are compared.
    model_name: str
    #: Human label for the UI ("wordllama (meaning, offline)", "lexical (word overlap) ...").
    label: str
    #: True for the lexical embedder: the UI says results match words, not meaning.
    lexical: bool
    #: Length of every vector this embedder returns.
    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One L2-normalised ``dim``-long vector per text, in order; the zero vector for a
        text with nothing to embed."""
        ...


def describe_model(model_name: str) -> str:
    """A label for a stored model name (rows keep the name, the UI shows this)."""
    return {
        WORDLLAMA_MODEL: "wordllama (meaning, offline)",
        LEXICAL_MODEL: "lexical (word overlap, offline)",
        OPENAI_MODEL: "OpenAI text-embedding-3-small (384-d)",
        LOCAL_MODEL: "local all-MiniLM-L6-v2",
    }.get(model_name, model_name)


def is_lexical(model_name: str) -> bool:
    return model_name.startswith("lexical")


def canonical_model(name: str) -> str:
    """The stored model name for an alias (``wordllama``) or a full name."""
    return MODEL_ALIASES.get(name.strip().lower(), name.strip())


def unit(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1; the zero vector (or one with a NaN) stays all zeros."""
    norm = math.sqrt(sum(float(v) * float(v) for v in vector))
    if norm == 0.0 or math.isnan(norm) or math.isinf(norm):
        return [0.0] * len(vector)
    return [float(v) / norm for v in vector]


def is_zero(vector: Sequence[float]) -> bool:
    """True for a vector without a direction (nothing to compare): never store or search it."""
    return not any(v != 0.0 for v in vector)
