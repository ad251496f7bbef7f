"""The lexical embedder: deterministic feature hashing of words (matches words, not meaning)."""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict

from jarvis.llm.embedders.base import LEXICAL_MODEL, MODEL_DIMS, describe_model, unit

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

    def __init__(self, dim: int = MODEL_DIMS[LEXICAL_MODEL]) -> None:
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
        return unit(vec)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._embed_one(t) for t in texts]
