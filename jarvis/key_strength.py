"""Is a key or password too predictable to protect anything? (Production refuses those.)

A value can meet a length rule and still be worthless: 32 times "a" as the JWT secret, an
all-zero master key, "password" as the database password. :func:`secret_weakness` and
:func:`key_weakness` say why a value is weak (a short phrase, never the value), or None.
"""

from __future__ import annotations

import math
from collections import Counter

#: Placeholders and classics found in examples, tutorials and leaked-password lists.
WELL_KNOWN = frozenset(
    {
        "password",
        "passw0rd",
        "password1",
        "password123",
        "secret",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "admin",
        "administrator",
        "root",
        "toor",
        "postgres",
        "jarvis",
        "jarvis_app",
        "letmein",
        "welcome",
        "qwerty",
        "123456",
        "12345678",
        "123456789",
        "1234567890",
        "default",
        "example",
        "test",
        "testing",
    }
)
#: Words that mark a value copied from documentation rather than generated.
PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "example", "placeholder", "your-")


def estimated_bits(text: str) -> float:
    """Shannon entropy of the characters times the length: a generous upper bound of how many
    bits of guessing the value is worth (a random value scores close to its true entropy)."""
    if not text:
        return 0.0
    counts = Counter(text)
    n = len(text)
    per_char = -sum(c / n * math.log2(c / n) for c in counts.values())
    return per_char * n


def _repeats(data: bytes | str) -> bool:
    """True when ``data`` is a shorter unit repeated ("abcabcabc...")."""
    n = len(data)
    return any(n % size == 0 and data == data[:size] * (n // size) for size in range(1, n // 2 + 1))


def secret_weakness(value: str, *, min_bits: float, min_chars: int = 0) -> str | None:
    """Why a text secret (JWT secret, password) is too predictable, or None."""
    lowered = value.strip().lower()
    if lowered in WELL_KNOWN:
        return "a well-known value"
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return "a placeholder from an example"
    if len(value) < min_chars:
        return f"shorter than {min_chars} characters"
    if _repeats(value):
        return "a repeated pattern"
    if estimated_bits(value) < min_bits:
        return "too few different characters (low entropy)"
    return None


def key_weakness(key: bytes) -> str | None:
    """Why a binary key (the 32-byte master key) is too predictable, or None."""
    if _repeats(key):
        return "a repeated byte pattern (such as all zeros)"
    steps = {(b - a) % 256 for a, b in zip(key, key[1:], strict=False)}
    if len(steps) == 1:
        return "a counting sequence"
    if len(set(key)) < len(key) // 2:
        return "too few different bytes (low entropy)"
    return None
