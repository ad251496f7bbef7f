"""The conversation list's date groups (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jarvis.services.chat.listing import GROUPS, date_group, group_by_date
from jarvis.services.chat.views import ConversationView

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "group"),
    [
        (NOW, "Today"),
        (datetime(2026, 3, 10, 0, 0, tzinfo=UTC), "Today"),
        (datetime(2026, 3, 9, 23, 59, tzinfo=UTC), "Yesterday"),
        (datetime(2026, 3, 9, 0, 0, tzinfo=UTC), "Yesterday"),
        (datetime(2026, 3, 8, 23, 59, tzinfo=UTC), "Previous 7 days"),
        (datetime(2026, 3, 3, 0, 0, tzinfo=UTC), "Previous 7 days"),
        (datetime(2026, 3, 2, 23, 59, tzinfo=UTC), "Older"),
        (NOW - timedelta(days=400), "Older"),
        (NOW + timedelta(minutes=5), "Today"),  # a clock slightly ahead is still today
    ],
)
def test_date_groups_are_calendar_days(when: datetime, group: str) -> None:
    assert date_group(when, NOW) == group


def test_days_are_the_users_local_days() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")  # 09:30 UTC is 18:30 there; 16:00 UTC the day before is 01:00
    when = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    assert date_group(when, NOW) == "Yesterday"
    assert date_group(when, NOW, tokyo) == "Today"


def view(title: str, when: datetime) -> ConversationView:
    return ConversationView(uuid.uuid4(), title, "offline", "offline-deterministic", when, when)


def test_groups_keep_the_order_and_leave_out_empty_ones() -> None:
    rows = [
        view("a", NOW),
        view("b", NOW - timedelta(hours=1)),
        view("c", NOW - timedelta(days=30)),
    ]
    groups = group_by_date(rows, NOW)
    assert [(g.label, [c.title for c in g.conversations]) for g in groups] == [
        ("Today", ["a", "b"]),
        ("Older", ["c"]),
    ]
    assert [g.label for g in group_by_date([], NOW)] == []
    assert GROUPS == ("Today", "Yesterday", "Previous 7 days", "Older")
