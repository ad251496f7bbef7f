"""The chat providers Jarvis knows, their labels and default model lists."""

from __future__ import annotations

from jarvis.llm.offline import OFFLINE, OFFLINE_LABEL, OFFLINE_MODEL

OPENAI = "openai"
ANTHROPIC = "anthropic"
OPENAI_COMPATIBLE = "openai_compatible"

#: Chat providers in the order the picker shows them (offline first: it always works).
CHAT_PROVIDERS: tuple[str, ...] = (OFFLINE, OPENAI, ANTHROPIC, OPENAI_COMPATIBLE)

PROVIDER_LABELS: dict[str, str] = {
    OFFLINE: OFFLINE_LABEL,
    OPENAI: "OpenAI",
    ANTHROPIC: "Anthropic",
    OPENAI_COMPATIBLE: "OpenAI-compatible (Ollama, vLLM, LM Studio, OpenRouter)",
}

#: Suggested models per provider, default first. Users of an OpenAI-compatible server
#: usually type their own model name (whatever the server has pulled).
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    OFFLINE: (OFFLINE_MODEL,),
    OPENAI: ("gpt-4o-mini", "gpt-4.1-mini", "gpt-4o", "gpt-4.1", "gpt-5-mini", "gpt-5"),
    ANTHROPIC: (
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
        "claude-opus-4-5",
        "claude-3-5-haiku-latest",
    ),
    OPENAI_COMPATIBLE: ("llama3.1", "qwen2.5", "mistral"),
}


def default_model(provider: str) -> str:
    """The model a new conversation with ``provider`` starts with."""
    models = DEFAULT_MODELS.get(provider)
    return models[0] if models else OFFLINE_MODEL


def provider_label(provider: str) -> str:
    return PROVIDER_LABELS.get(provider, provider)
