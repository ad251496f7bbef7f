"""The default embedder: ``wordllama`` (meaning, offline, numpy only; the model is in its wheel).

The wheel carries the 256-dimensional ``l2_supercat`` weights under ``weights/`` and the
tokenizer under ``tokenizers/``, but ``WordLlama.load`` looks for the tokenizer in the package's
``tokenizer/`` folder first and would then try to download it. Its second place to look is
``<cache_dir>/tokenizers/``: so ``cache_dir`` is the package folder itself (both files are found
there) and ``disable_download=True`` makes a missing file an error instead of a request. The
package configures the root logger when imported (``logging.basicConfig``); the import here puts
the root logger back as it was, so Jarvis's redacting handler stays the only one.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from jarvis.errors import ConfigError
from jarvis.llm.embedders.base import MODEL_DIMS, WORDLLAMA_MODEL, describe_model

CONFIG = "l2_supercat"

_load_lock = threading.Lock()
#: Loaded models by folder: read-only numpy weights, shared by every user and thread.
_models: dict[Path, Any] = {}


def _import_wordllama() -> Any:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ConfigError("The wordllama package is not installed.") from exc
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return wordllama


def packaged_model_dir() -> Path:
    """The installed ``wordllama`` package folder (holds ``weights/`` and ``tokenizers/``)."""
    return Path(_import_wordllama().__file__).resolve().parent


def load_wordllama(model_dir: Path | None = None) -> Any:
    """The ``WordLlamaInference`` for ``model_dir`` (the packaged model by default), loaded
    once per process, never downloading."""
    with _load_lock:
        module = _import_wordllama()
        folder = (model_dir or packaged_model_dir()).resolve()
        if folder not in _models:
            try:
                _models[folder] = module.WordLlama.load(
                    CONFIG,
                    cache_dir=folder,
                    dim=MODEL_DIMS[WORDLLAMA_MODEL],
                    disable_download=True,
                )
            except (FileNotFoundError, OSError, ValueError) as exc:
                raise ConfigError(
                    f"The wordllama model files are missing from {folder} (no download is tried)."
                ) from exc
        return _models[folder]


class WordLlamaEmbedder:
    """wordllama ``l2_supercat`` (256-d): average of token embeddings distilled from a large
    language model; ~12 ms for 1,000 sentences on one core. Loaded on first use."""

    model_name = WORDLLAMA_MODEL
    label = describe_model(WORDLLAMA_MODEL)
    lexical = False
    dim = MODEL_DIMS[WORDLLAMA_MODEL]

    def __init__(self, model_dir: Path | None = None) -> None:
        self._dir = model_dir
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        import numpy as np

        model = load_wordllama(self._dir)
        with self._lock:  # the tokenizer's padding settings live on the shared object
            raw = model.embed([t or "" for t in texts], norm=False)
        vectors = np.asarray(raw, dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        ok = np.isfinite(norms) & (norms > 0)
        vectors = np.where(ok, vectors / np.where(ok, norms, 1.0), 0.0)
        return [[float(x) for x in row] for row in vectors]
