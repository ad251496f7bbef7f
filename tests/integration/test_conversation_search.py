"""Listing conversations for the sidebar: title search, paging, the running flag and date
groups in the overview."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.chat_helpers import make_user


def test_search_pages_and_groups(services) -> None:  # type: ignore[no-untyped-def]
    user, other = make_user(services), make_user(services)
    convs = services.conversations
    titles = ["Tax plan 2026", "Holiday 100% fun", "my_tax_notes", "Shopping"]
    for title in titles:
        convs.create_default(user, title=title)
        services.clock.advance(days=1)
    convs.create_default(other, title="Other tax")

    assert [c.title for c in convs.list(user, query="TAX")] == ["my_tax_notes", "Tax plan 2026"]
    assert [c.title for c in convs.list(user, query="100%")] == ["Holiday 100% fun"]
    assert [c.title for c in convs.list(user, query="_")] == ["my_tax_notes"]  # not a wildcard
    assert [c.title for c in convs.list(user, query="  ")] == list(reversed(titles))
    assert [c.title for c in convs.list(user, 2, offset=1)] == ["my_tax_notes", "Holiday 100% fun"]
    assert not any(c.running for c in convs.list(user))

    view = convs.overview(user, query="o", limit=2)
    assert view.has_more and view.query == "o"
    assert [c.title for c in view.conversations] == ["Shopping", "my_tax_notes"]
    # the clock is a day past the newest: "Shopping" was yesterday, my_tax_notes two days ago
    assert [(g.label, [c.title for c in g.conversations]) for g in view.groups] == [
        ("Yesterday", ["Shopping"]),
        ("Previous 7 days", ["my_tax_notes"]),
    ]
    assert not convs.overview(user, query="o", limit=3).has_more
    services.clock.advance(days=30)
    assert [g.label for g in convs.overview(user).groups] == ["Older"]
    assert services.clock.now() - view.conversations[0].updated_at > timedelta(days=30)
