"""Which pages each role sees. Each capability adds its pages here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to app.py
    title: str
    icon: str
    url_path: str
    section: str = "Jarvis"
    admin_only: bool = False


PAGES: tuple[PageSpec, ...] = (
    PageSpec("app_pages/home.py", "Home", ":material/home:", "home"),
)


def pages_for(role: str) -> list[PageSpec]:
    """The pages a signed-in user with ``role`` may open."""
    return [p for p in PAGES if role == "admin" or not p.admin_only]
