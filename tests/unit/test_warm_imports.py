"""The server warms the pages' heavy modules in the background; a module that cannot be
imported is logged, never fatal (the first page would import it itself)."""

from __future__ import annotations

import logging
import sys

import pytest

from jarvis.asgi import WARM_MODULES, warm_imports


def test_warming_imports_modules_and_survives_a_missing_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sys.modules.pop("colorsys", None)
    with caplog.at_level(logging.INFO, logger="jarvis.asgi"):
        warm_imports(("jarvis_no_such_module", "colorsys")).join(timeout=60)
    assert "colorsys" in sys.modules
    assert any("jarvis_no_such_module" in r.getMessage() for r in caplog.records)
    assert any(r.getMessage() == "page modules warmed" for r in caplog.records)
    # what the pages import is on the list (the sign-in page's helpers first)
    assert WARM_MODULES[0] == "jarvis.ui.session"
    assert {"pandas", "plotly.express", "streamlit_echarts"} <= set(WARM_MODULES)
