"""The README stays true to the tree: every setting, migration and module is named in it."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from jarvis.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's ``## title`` section (up to the next ``## `` heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"the README has no '## {title}' section"
    return match.group(1)


def variable_of(name: str) -> str:
    alias = Settings.model_fields[name].validation_alias
    return str(alias.choices[0]) if isinstance(alias, AliasChoices) else name.upper()


def test_the_configuration_table_lists_every_setting() -> None:
    table = section("Configuration")
    missing = [v for v in map(variable_of, Settings.model_fields) if f"`{v}`" not in table]
    assert missing == [], f"add these to the README's configuration table: {missing}"
    # ...and, as the README says, .env.example lists every variable too.
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    unlisted = [v for v in map(variable_of, Settings.model_fields) if f"{v}=" not in example]
    assert unlisted == [], f"add these to .env.example: {unlisted}"


def test_the_architecture_map_lists_every_migration() -> None:
    architecture = section("Architecture")
    revisions = sorted(p.name[:4] for p in (ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    assert revisions, "no migrations found"
    missing = [r for r in revisions if r not in architecture]
    assert missing == [], f"name these migrations in the README's architecture map: {missing}"


def test_the_architecture_map_names_every_part_of_the_package() -> None:
    architecture = section("Architecture")
    parts = [
        p.name if p.suffix == ".py" else p.name + "/"
        for p in (ROOT / "jarvis").iterdir()
        if not p.name.startswith(("_", ".")) and (p.suffix == ".py" or p.is_dir())
    ]
    missing = [part for part in parts if f"  {part}" not in architecture]
    assert missing == [], f"add these to the README's architecture map: {missing}"
    services = [
        p.stem
        for p in (ROOT / "jarvis" / "services").iterdir()
        if not p.name.startswith(("_", "."))
    ]
    unnamed = [s for s in services if not re.search(rf"\b{s}\b", architecture)]
    assert unnamed == [], f"name these services in the README's architecture map: {unnamed}"
