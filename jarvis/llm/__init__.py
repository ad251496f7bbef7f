"""LLM providers behind one port (:mod:`jarvis.llm.base`): OpenAI, Anthropic,
OpenAI-compatible servers, the offline model and the test fake."""

from jarvis.llm.base import (
    ChatMessage,
    FakeProvider,
    Finished,
    LLMProvider,
    ScriptedReply,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
    ToolCallsReady,
    ToolDefinition,
    Usage,
    UsageReport,
)

__all__ = [
    "ChatMessage",
    "FakeProvider",
    "Finished",
    "LLMProvider",
    "ScriptedReply",
    "StreamEvent",
    "TextDelta",
    "ToolCallRequest",
    "ToolCallsReady",
    "ToolDefinition",
    "Usage",
    "UsageReport",
]
