"""The start page: a user's recent conversations and this month's spend against their budget,
in one call."""

from __future__ import annotations

from dataclasses import dataclass

from jarvis.clock import Clock
from jarvis.identity import Principal
from jarvis.services.auth.devices import ago
from jarvis.services.chat.conversations import ConversationService
from jarvis.services.chat.views import ConversationView
from jarvis.services.usage import BudgetStatus, UsageService

#: How many conversations the start page lists.
RECENT = 8


@dataclass(frozen=True, slots=True)
class RecentConversation:
    conversation: ConversationView
    #: When it was last active, in words ("2 hours ago").
    last_active: str


@dataclass(frozen=True, slots=True)
class StartPage:
    """What Home shows."""

    recent: list[RecentConversation]
    budget: BudgetStatus
    #: The month so far in words: "$1.23 of $10.00 (12 %)".
    spend_text: str


def spend_text(budget: BudgetStatus) -> str:
    """``"$1.23 of $10.00 this month (12 %)"``; a budget of 0 says that no runs are allowed."""
    if budget.budget_usd <= 0:
        return f"${budget.spent_usd:,.2f} this month · your budget is $0: chat with models is off"
    percent = round(budget.fraction * 100)
    return f"${budget.spent_usd:,.2f} of ${budget.budget_usd:,.2f} this month ({percent} %)"


class HomeService:
    """``start_page(principal)``: recent conversations and the month's spend."""

    def __init__(
        self, conversations: ConversationService, usage: UsageService, clock: Clock
    ) -> None:
        self._conversations = conversations
        self._usage = usage
        self._clock = clock

    def start_page(self, principal: Principal) -> StartPage:
        """The user's :data:`RECENT` most recently active conversations and their budget."""
        now = self._clock.now()
        recent = [
            RecentConversation(c, ago(c.updated_at, now))
            for c in self._conversations.list(principal, RECENT)
        ]
        budget = self._usage.budget_status(principal)
        return StartPage(recent=recent, budget=budget, spend_text=spend_text(budget))
