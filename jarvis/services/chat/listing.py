"""The conversation list's date groups (pure: unit-tested without a database).

Days are calendar days in the user's time zone (``users.timezone``), as usage and budgets count
them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo

from jarvis.services.chat.views import ConversationGroup, ConversationView

TODAY = "Today"
YESTERDAY = "Yesterday"
PREVIOUS_7_DAYS = "Previous 7 days"
OLDER = "Older"
GROUPS = (TODAY, YESTERDAY, PREVIOUS_7_DAYS, OLDER)


def date_group(when: datetime, now: datetime, tz: tzinfo = UTC) -> str:
    """The group of a conversation last active at ``when``, seen at ``now`` in zone ``tz``."""
    days = (now.astimezone(tz).date() - when.astimezone(tz).date()).days
    if days <= 0:
        return TODAY
    if days == 1:
        return YESTERDAY
    if days <= 7:
        return PREVIOUS_7_DAYS
    return OLDER


def group_by_date(
    conversations: Iterable[ConversationView], now: datetime, tz: tzinfo = UTC
) -> list[ConversationGroup]:
    """``conversations`` (newest first) in their date groups, in :data:`GROUPS` order; empty
    groups are left out."""
    grouped: dict[str, list[ConversationView]] = {label: [] for label in GROUPS}
    for conversation in conversations:
        grouped[date_group(conversation.updated_at, now, tz)].append(conversation)
    return [ConversationGroup(label, items) for label, items in grouped.items() if items]
