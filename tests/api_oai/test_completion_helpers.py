"""The pure parts of OpenAI-style completions: model names, messages to history, run errors."""

from __future__ import annotations

import pytest

from jarvis import errors
from jarvis.llm.factory import ProviderChoice
from jarvis.services.chat.completions import (
    INSTRUCTIONS_LEAD,
    ChatTurn,
    failure,
    model_entries,
    resolve_model,
    split_turns,
)
from jarvis.services.chat.runs import MAX_HISTORY_MESSAGES


def choice(pid: str, *models: str) -> ProviderChoice:
    return ProviderChoice(pid, pid, models, models[0], pid != "offline")


CHOICES = [
    choice("offline", "offline-deterministic"),
    choice("openai", "gpt-4o-mini", "gpt-4o"),
    choice("openai_compatible", "llama3.1", "gpt-4o"),
]


def test_model_ids_are_provider_slash_model() -> None:
    ids = [m.id for m in model_entries(CHOICES)]
    assert ids[:3] == ["offline/offline-deterministic", "openai/gpt-4o-mini", "openai/gpt-4o"]


@pytest.mark.parametrize(
    ("asked", "found"),
    [
        ("openai/gpt-4o", ("openai", "gpt-4o")),
        (" openai ", ("openai", "gpt-4o-mini")),  # a provider alone: its default model
        ("gpt-4o-mini", ("openai", "gpt-4o-mini")),  # a model listed once
        ("openai_compatible/org/any-model:7b", ("openai_compatible", "org/any-model:7b")),
        ("offline", ("offline", "offline-deterministic")),
    ],
)
def test_resolve_model(asked: str, found: tuple[str, str]) -> None:
    assert resolve_model(CHOICES, asked) == found


@pytest.mark.parametrize(
    "asked", ["gpt-4o", "openai/gpt-9", "anthropic/claude-haiku-4-5", "", "offline/other"]
)
def test_unknown_or_ambiguous_models_are_not_found(asked: str) -> None:
    with pytest.raises(errors.NotFoundError, match="GET /models"):
        resolve_model(CHOICES, asked)


def test_split_turns_keeps_instructions_first_and_the_latest_history() -> None:
    turns = [ChatTurn("system", "Be brief."), ChatTurn("developer", "Use French.")]
    for i in range(30):
        turns += [ChatTurn("user", f"q{i}"), ChatTurn("assistant", f"a{i}")]
    turns += [ChatTurn("tool", "{}"), ChatTurn("assistant", ""), ChatTurn("user", "  last  ")]
    history, text = split_turns(turns)
    assert text == "last"
    assert len(history) == MAX_HISTORY_MESSAGES - 1  # what a run reads; no answer first
    assert history[0] == ("user", INSTRUCTIONS_LEAD + "Be brief.\n\nUse French.")
    assert history[1] == ("user", "q21") and history[-1] == ("assistant", "a29")


@pytest.mark.parametrize(
    "turns",
    [[], [ChatTurn("user", "q"), ChatTurn("assistant", "a")], [ChatTurn("user", "  ")]],
)
def test_a_request_needs_a_last_user_message(turns: list[ChatTurn]) -> None:
    with pytest.raises(errors.ValidationError):
        split_turns(turns)


def test_a_failed_run_is_raised_as_the_error_that_ended_it() -> None:
    assert type(failure("BudgetExceededError", "spent")) is errors.BudgetExceededError
    assert type(failure("ProviderTimeoutError", "slow")) is errors.ProviderTimeoutError
    assert str(failure("ProviderTimeoutError", "slow")) == "slow"
    for unknown in ("", "KeyError", "Principal", "__class__"):
        assert type(failure(unknown, "x")) is errors.JarvisError
