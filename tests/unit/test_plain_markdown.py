"""plain_markdown: text shown through Streamlit's Markdown exactly as typed."""

from __future__ import annotations

import pytest

from jarvis.ui.markdown import plain_markdown


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Ada Lovelace", "Ada Lovelace"),
        ("![x](https://e.example/p.png)", r"\!\[x\]\(https\:\/\/e\.example\/p\.png\)"),
        ("**bold** _it_ `code`", r"\*\*bold\*\* \_it\_ \`code\`"),
        (":red[alarm] :material/home: $x$", r"\:red\[alarm\] \:material\/home\: \$x\$"),
        ("<b>hi</b> \\", r"\<b\>hi\<\/b\> \\"),
        ("Zoë 山田", "Zoë 山田"),
    ],
)
def test_markdown_syntax_is_escaped(raw: str, shown: str) -> None:
    assert plain_markdown(raw) == shown


def test_line_breaks_do_not_start_blocks() -> None:
    # A newline could start a heading or a list in the middle of a caption.
    assert "\n" not in plain_markdown("a\n# heading\n- item")
