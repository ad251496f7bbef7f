"""A run's event log folded into what the chat page shows (pure: no Streamlit).

The page replays a run's log from its first event and folds it into one :class:`RunProgress`
before drawing anything, so re-attaching to a long run (a reload, another tab) costs one render,
not one per event; then each live event updates the same progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from jarvis.services.chat import events as ev


@dataclass
class ToolStep:
    """One tool call as the page shows it (arguments first, result when it finished)."""

    call_id: str
    tool_id: str
    arguments: dict[str, object]
    status: str = "running"
    result: dict[str, object] | None = None
    latency_ms: int | None = None
    reason: str | None = None


@dataclass
class RunProgress:
    """Everything the page shows of one run so far."""

    answer: str = ""
    steps: list[ToolStep] = field(default_factory=list)
    total_tokens: int = 0
    cost_usd: Decimal | None = None
    unpriced: bool = False
    estimated: bool = False
    budget_warning: str | None = None
    status: str = "running"
    error: str | None = None
    last_seq: int = 0

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def apply(self, event: ev.Event, seq: int = 0) -> None:
        """Fold one event in (``seq``: its number in the log)."""
        self.last_seq = max(self.last_seq, seq)
        if isinstance(event, ev.RunStarted):
            if event.budget_warning:
                self.budget_warning = budget_warning(event.budget_fraction or 0)
        elif isinstance(event, ev.TextDelta):
            self.answer += event.text
        elif isinstance(event, ev.ToolCallStarted):
            self.steps.append(ToolStep(event.call_id, event.tool_id, dict(event.arguments)))
        elif isinstance(event, ev.ToolCallFinished):
            step = self._step(event.call_id, event.tool_id)
            step.status, step.result, step.latency_ms = event.status, event.result, event.latency_ms
        elif isinstance(event, ev.ToolCallDenied):
            step = self._step(event.call_id, event.tool_id)
            step.status, step.reason = "denied", event.reason
        elif isinstance(event, ev.UsageUpdate):
            self.total_tokens, self.cost_usd = event.total_tokens, event.cost_usd
            self.unpriced, self.estimated = event.unpriced, event.estimated
        elif isinstance(event, ev.RunCompleted):
            self.status, self.answer = "completed", event.text or self.answer
            self.total_tokens, self.cost_usd = event.total_tokens, event.cost_usd
        elif isinstance(event, ev.RunCancelled):
            self.status = "cancelled"
            self.total_tokens, self.cost_usd = event.total_tokens, event.cost_usd
        elif isinstance(event, ev.RunFailed):
            self.status, self.error = "failed", event.error
            self.total_tokens, self.cost_usd = event.total_tokens, event.cost_usd

    def _step(self, call_id: str, tool_id: str) -> ToolStep:
        for step in reversed(self.steps):
            if step.call_id == call_id:
                return step
        step = ToolStep(call_id, tool_id, {})  # denied before it started
        self.steps.append(step)
        return step


def budget_warning(fraction: float) -> str:
    """What the page says when a run starts past the budget's warning line."""
    return f"You have used {fraction:.0%} of your monthly budget."


def cost_line(tokens: int, cost: Decimal | None, unpriced: bool, estimated: bool = False) -> str:
    """``123 tokens · $0.0012`` (``unpriced`` when the model has no price; ``≈`` estimated)."""
    money = "unpriced" if unpriced or cost is None else f"${cost:.4f}"
    approx = "≈" if estimated else ""
    return f"{approx}{tokens:,} tokens · {money}"
