"""One colour per model and per token type, the same in every chart and after every reload.

A model's colour is a hash of its name (SHA-256, not Python's salted ``hash``) into a fixed
palette, so it does not depend on which other models a chart shows, on their order or on the
process; token types have fixed colours outside the models' palette.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

#: Models' colours: distinct, readable on light and dark themes (Plotly's "Dark24" family).
MODEL_PALETTE: tuple[str, ...] = (
    "#2E91E5",
    "#E15F99",
    "#1CA71C",
    "#FB0D0D",
    "#DA16FF",
    "#B68100",
    "#750D86",
    "#EB663B",
    "#511CFB",
    "#00A08B",
    "#FB00D1",
    "#FC0080",
    "#B2828D",
    "#6C7C32",
    "#778AAE",
    "#862A16",
    "#A777F1",
    "#620042",
    "#1616A7",
    "#DA60CA",
    "#6C4516",
    "#0D2A63",
    "#AF0038",
    "#22FFA7",
)

#: Token types by the label the usage page gives them.
TOKEN_COLOURS: dict[str, str] = {
    "input": "#4C78A8",
    "output": "#F58518",
    "cache read": "#54A24B",
    "cache write": "#B279A2",
}


def model_colour(model: str) -> str:
    """The colour of ``model`` (the same for the same name, everywhere, always)."""
    digest = hashlib.sha256(model.encode("utf-8")).digest()
    return MODEL_PALETTE[int.from_bytes(digest[:8], "big") % len(MODEL_PALETTE)]


def model_colours(models: Iterable[str]) -> dict[str, str]:
    """``{model: colour}`` for a chart's ``color_discrete_map``."""
    return {m: model_colour(m) for m in models}
