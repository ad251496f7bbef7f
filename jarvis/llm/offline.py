"""The offline model: deterministic, local, no key, no LLM — but it drives the tool loop.

It reads the last user message and picks a tool by simple patterns:

======================================  =============================================
"remember (that) X"                      ``memory_store``  {content: X}
"what do you know about X", "who is X"   ``memory_search`` and ``kg_lookup`` {query: X}
"what is 2*(3+4)", "calculate 3 ^ 2"     ``calculator``    {expression}
"what time is it", "what's the date"     ``current_time``  {}
"how much have I spent", "my usage"      ``usage_report``  {}
"search the web for X"                   ``web_search``    {query: X}
======================================  =============================================

It only calls tools it was offered (``tools``); once tool results follow the last user message
it writes a final answer summarising them; anything else gets a canned answer that says it is
offline. Token counts are estimated from word counts so cost lines show.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from jarvis.llm.base import (
    ChatMessage,
    ScriptedReply,
    StreamEvent,
    ToolCallRequest,
    ToolDefinition,
    Usage,
    estimate_tokens,
    reply_events,
)

OFFLINE = "offline"
OFFLINE_MODEL = "offline-deterministic"
OFFLINE_LABEL = "offline (deterministic, no LLM)"

_MAX_ITEMS = 5
_MAX_ITEM_CHARS = 200

_REMEMBER = re.compile(r"^\s*(?:please\s+)?remember(?:\s+that)?[\s:,]+(?P<x>.+)$", re.I | re.S)
_LOOKUP = re.compile(
    r"^\s*(?:what\s+do\s+you\s+(?:know|remember)\s+about|tell\s+me\s+about|who\s+is|"
    r"who\s+are|what\s+about)\s+(?P<x>.+?)[\s?.!]*$",
    re.I | re.S,
)
_WEB = re.compile(
    r"^\s*(?:search\s+the\s+web\s+for|web\s+search(?:\s+for)?|google|look\s+up\s+online)"
    r"\s+(?P<x>.+?)[\s?.!]*$",
    re.I | re.S,
)
_CALC_PREFIX = re.compile(
    r"^\s*(?:what\s+is|what's|whats|how\s+much\s+is|calculate|compute|evaluate)\s+", re.I
)
_ARITHMETIC = re.compile(r"^[\d\s.+\-*/()%^×÷]+$")
_WORD_OPS = (
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"\b(?:times|multiplied\s+by)\b", re.I), "*"),
    (re.compile(r"\bdivided\s+by\b", re.I), "/"),
    (re.compile(r"\bto\s+the\s+power\s+of\b", re.I), "**"),
)
_TIME = re.compile(
    r"\b(?:what\s+time|the\s+time|current\s+time|time\s+is\s+it|what(?:'s|\s+is)\s+the\s+date|"
    r"today'?s\s+date|what\s+day\s+is)\b",
    re.I,
)
_SPEND = re.compile(
    r"\b(?:how\s+much\s+(?:have\s+i|did\s+i)\s+spen[dt]|my\s+(?:usage|spending|costs?)|"
    r"usage\s+report|how\s+much\s+.*\bcost\b)",
    re.I,
)


class OfflineProvider:
    """:class:`~jarvis.llm.base.LLMProvider` that needs no network and no key."""

    name = OFFLINE
    label = OFFLINE_LABEL
    #: Computed here, never waiting on a network: the run reads it without a helper thread.
    in_process = True

    def stream(
        self,
        messages: list[ChatMessage],
        tools: list[ToolDefinition],
        *,
        model: str = OFFLINE_MODEL,  # noqa: ARG002 - the port's signature; one model only
        max_tokens: int | None = None,  # noqa: ARG002 - answers are short
    ) -> Iterator[StreamEvent]:
        """Decide deterministically: call tools, summarise their results, or explain."""
        reply = respond(messages, tools)
        prompt = sum(estimate_tokens(m.content) + 4 for m in messages) + sum(
            estimate_tokens(t.description) + 8 * len(t.parameters.get("properties", {})) + 10
            for t in tools
        )
        output = estimate_tokens(reply.text) + sum(
            estimate_tokens(json.dumps(c.arguments)) + 6 for c in reply.tool_calls
        )
        reply.usage = Usage(input_tokens=prompt, output_tokens=max(output, 1))
        yield from reply_events(reply, messages)


def respond(messages: list[ChatMessage], tools: list[ToolDefinition]) -> ScriptedReply:
    """The offline model's whole decision for one turn."""
    last_user = _last_index(messages, "user")
    if last_user is None:
        return ScriptedReply(text=_intro(tools))
    results = [m for m in messages[last_user + 1 :] if m.role == "tool"]
    if results:
        return ScriptedReply(text=_summarise(messages[last_user + 1 :]))
    return _plan(messages[last_user].content, {t.name: t for t in tools})


def _last_index(messages: list[ChatMessage], role: str) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == role:
            return index
    return None


# -- planning ------------------------------------------------------------------------------


def _plan(text: str, offered: dict[str, ToolDefinition]) -> ScriptedReply:
    wanted = _intent(text)
    if wanted is None:
        return ScriptedReply(text=_intro(list(offered.values())))
    intent, calls = wanted
    usable = [(name, args) for name, args in calls if name in offered]
    if not usable:
        missing = ", ".join(f"`{name}`" for name, _ in calls)
        return ScriptedReply(
            text=f"I would use {missing} to {intent}, but that tool is not enabled for you. "
            "You can allow it on the Tools page. (I am the offline model: I only answer "
            "through tools.)"
        )
    requests = [
        ToolCallRequest(
            id=f"offline_{index + 1}", name=name, arguments=_arguments(offered[name], args)
        )
        for index, (name, args) in enumerate(usable)
    ]
    return ScriptedReply(text="", tool_calls=requests)


def _intent(text: str) -> tuple[str, list[tuple[str, dict[str, Any]]]] | None:
    """``(what it wants to do, [(tool, arguments)])`` or ``None`` for small talk."""
    text = text.strip()
    if match := _REMEMBER.match(text):
        fact = match["x"].strip().rstrip(".")
        return "remember that", [("memory_store", {"content": fact})]
    if match := _WEB.match(text):
        return "search the web", [("web_search", {"query": match["x"].strip()})]
    if expression := _expression(text):
        return "calculate it", [("calculator", {"expression": expression})]
    if _TIME.search(text):
        return "tell the time", [("current_time", {})]
    if _SPEND.search(text):
        return "report your usage", [("usage_report", {})]
    if match := _LOOKUP.match(text):
        topic = match["x"].strip()
        return "look that up", [
            ("memory_search", {"query": topic}),
            ("kg_lookup", {"query": topic}),
        ]
    return None


def _expression(text: str) -> str | None:
    body = _CALC_PREFIX.sub("", text, count=1).strip().rstrip("?=!. ")
    for pattern, symbol in _WORD_OPS:
        body = pattern.sub(symbol, body)
    body = body.strip()
    if not body or not _ARITHMETIC.match(body):
        return None
    if not re.search(r"\d", body) or not re.search(r"[+\-*/%^×÷]", body):
        return None
    return re.sub(r"\s+", " ", body)


def _arguments(tool: ToolDefinition, proposed: dict[str, Any]) -> dict[str, Any]:
    """Fit the proposed arguments to the tool's schema: keep known properties, and put the
    main text into the first required string property if the names differ."""
    properties = tool.parameters.get("properties") or {}
    if not properties:
        return dict(proposed)
    kept = {k: v for k, v in proposed.items() if k in properties}
    if len(kept) == len(proposed):
        return kept
    required = [p for p in tool.parameters.get("required", []) if p in properties]
    strings = [p for p in required if properties[p].get("type") == "string"] or [
        p for p, schema in properties.items() if schema.get("type") == "string"
    ]
    leftover = [v for k, v in proposed.items() if k not in properties and isinstance(v, str)]
    if strings and leftover and strings[0] not in kept:
        kept[strings[0]] = leftover[0]
    return kept


def _intro(tools: list[ToolDefinition]) -> str:
    names = {t.name for t in tools}
    examples = [
        ("memory_store", '"Remember that my favourite colour is green"'),
        ("memory_search", '"What do you know about Alice?"'),
        ("calculator", '"What is 2*(3+4)?"'),
        ("current_time", '"What time is it?"'),
        ("usage_report", '"How much have I spent?"'),
        ("web_search", '"Search the web for PostgreSQL 18"'),
    ]
    lines = [f"- {example}" for name, example in examples if name in names]
    text = (
        "I am the **offline model** (deterministic, no LLM): I run locally without an API key "
        "and can only answer through Jarvis' tools."
    )
    if lines:
        text += " Try one of these:\n\n" + "\n".join(lines)
    else:
        text += " No tools are enabled for you right now; allow some on the Tools page."
    return (
        text
        + "\n\nFor real conversations, add an OpenAI or Anthropic key in Secrets and pick that "
        "provider."
    )


# -- summarising ---------------------------------------------------------------------------


def _summarise(turn: list[ChatMessage]) -> str:
    names: dict[str, ToolCallRequest] = {}
    for message in turn:
        for call in message.tool_calls:
            names[call.id] = call
    lines = []
    for message in turn:
        if message.role != "tool":
            continue
        found = names.get(message.tool_call_id or "")
        name = found.name if found else "tool"
        lines.append(_describe(name, found.arguments if found else {}, message.content))
    return "\n\n".join(lines) if lines else "Done."


def _describe(name: str, arguments: dict[str, Any], content: str) -> str:
    try:
        data: Any = json.loads(content)
    except ValueError:
        data = content
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "status"}
    if isinstance(data, dict) and (data.get("error") or data.get("denied")):
        reason = data.get("error") or data.get("message") or "it was not allowed"
        return f"I could not use `{name}`: {_short(str(reason))}"
    if name == "calculator":
        result = data.get("result") if isinstance(data, dict) else data
        expression = arguments.get("expression") or (
            data.get("expression") if isinstance(data, dict) else ""
        )
        return f"{expression} = **{_short(str(result))}**"
    if name == "memory_store":
        fact = arguments.get("content") or (data.get("content") if isinstance(data, dict) else "")
        return f"Got it — I will remember that {_short(str(fact))}."
    if name == "current_time":
        return "It is " + _short(_first_scalar(data, ("iso", "datetime", "time", "now", "utc")))
    if name in ("memory_search", "kg_lookup", "web_search"):
        items = _items(data)
        title = {
            "memory_search": "From your memories",
            "kg_lookup": "From your knowledge graph",
            "web_search": "From the web",
        }[name]
        if not items:
            return f"{title}: nothing found."
        return f"{title}:\n" + "\n".join(f"- {_short(item)}" for item in items[:_MAX_ITEMS])
    if name == "usage_report" and isinstance(data, dict):
        return _spending(data)
    return f"`{name}` returned: " + _short(_flat(data), 400)


def _spending(report: dict[str, Any]) -> str:
    """The usage report as a sentence ("You have spent $0.00 this month, of your $20.00
    budget."); its numbers stay in the expandable tool step."""
    spent = _dollars(report.get("month_to_date_usd"))
    if spent is None:
        return "Your usage: " + _short(_flat(report), 400)
    text = f"You have spent {spent} this month"
    budget = report.get("budget")
    limit = _dollars(budget.get("budget_usd")) if isinstance(budget, dict) else None
    text += f", of your {limit} budget." if limit is not None else "."
    projected = _dollars(report.get("projected_month_usd"))
    if projected is not None and projected != spent:
        text += f" At this pace the month will cost about {projected}."
    return text


def _dollars(value: Any) -> str | None:
    """``"$1,234.50"`` from an amount (string or number), or None when it is not one."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    return f"${amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def _items(data: Any) -> list[str]:
    """Readable lines from a search result: contents, names with relations, titles."""
    if isinstance(data, dict):
        for key in ("hits", "results", "memories", "entities", "items"):
            if isinstance(data.get(key), list):
                return _items(data[key])
        return [_flat(data)] if data else []
    if isinstance(data, list):
        lines = []
        for item in data:
            if isinstance(item, dict):
                lines.append(_entry(item))
            elif item is not None:
                lines.append(str(item))
        return [line for line in lines if line]
    return [str(data)] if data else []


def _entry(item: dict[str, Any]) -> str:
    for key in ("content", "text", "snippet"):
        if isinstance(item.get(key), str):
            title = item.get("title")
            return f"{title}: {item[key]}" if isinstance(title, str) else str(item[key])
    name = item.get("name") or item.get("title")
    if name:
        kind = item.get("type") or item.get("entity_type") or item.get("kind")
        text = f"{name}" + (f" ({kind})" if isinstance(kind, str) and kind else "")
        description = item.get("description")
        if isinstance(description, str) and description:
            text += f": {description}"
        relations = item.get("facts") or item.get("relations")
        if isinstance(relations, list) and relations:
            parts = [_relation(r) for r in relations[:3]]
            text += " — " + "; ".join(p for p in parts if p)
        return text
    return _flat(item)


def _relation(relation: Any) -> str:
    if not isinstance(relation, dict):
        return str(relation)
    verb = relation.get("relation") or relation.get("type") or relation.get("label") or "related to"
    other = (
        relation.get("object")
        or relation.get("target")
        or relation.get("target_name")
        or relation.get("other")
        or ""
    )
    if isinstance(other, dict):
        other = other.get("name", "")
    subject = relation.get("subject") or relation.get("source")
    return " ".join(str(p) for p in (subject, verb, other) if p)


def _first_scalar(data: Any, keys: tuple[str, ...]) -> str:
    if isinstance(data, dict):
        for key in keys:
            if data.get(key) is not None:
                return str(data[key])
        return _flat(data)
    return str(data)


def _flat(data: Any) -> str:
    if isinstance(data, dict):
        return (
            ", ".join(f"{k}: {_flat(v)}" for k, v in data.items() if not isinstance(v, dict | list))
            or json.dumps(data, default=str)[:_MAX_ITEM_CHARS]
        )
    if isinstance(data, list):
        return ", ".join(_flat(v) for v in data[:_MAX_ITEMS])
    return str(data)


def _short(text: str, limit: int = _MAX_ITEM_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
