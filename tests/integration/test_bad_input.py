"""Every input path, probed as a clumsy user (or a model) would: NUL, lone surrogates, control
characters, invalid UTF-8, 1 MB, deep nesting, negative and huge numbers. Each answer is a
``ValidationError`` naming the field (or a rejected import row); nothing hangs, crashes or
stores garbage. Real PostgreSQL, app role."""

from __future__ import annotations

import json
import math
import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from jarvis.bootstrap import Services
from jarvis.errors import ToolError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.base import ChatMessage, ScriptedReply, ToolCallRequest, ToolDefinition
from jarvis.services.chat import events as ev
from jarvis.services.pricing.views import PriceInput
from jarvis.services.usage.views import UsageQuery
from jarvis.tools.builtin import ToolContext, current_time
from tests.factories import OPERATOR, PW, insert_user
from tests.integration.chat_helpers import fake, make_chat, rows, run_all

NUL = "bad\x00text"
SURROGATE = "bad\ud800text"
ESCAPE = "bad\x1b[31mtext"
BAD_TEXT = pytest.mark.parametrize(
    "bad", [NUL, SURROGATE, ESCAPE, "x" * 1_000_000], ids=["nul", "surrogate", "escape", "1mb"]
)


def deep(levels: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(levels):
        value = {"k": value}
    return value


def refused(field: str):  # type: ignore[no-untyped-def]
    """``pytest.raises`` for a field error on ``field``."""

    class _Check:
        def __enter__(self) -> None:
            self._raises = pytest.raises(ValidationError)
            self._info = self._raises.__enter__()

        def __exit__(self, *exc: object) -> bool:
            handled = self._raises.__exit__(*exc)  # type: ignore[arg-type]
            assert self._info.value.field == field, (self._info.value.field, self._info.value)
            return bool(handled)

    return _Check()


@pytest.fixture
def user(services: Services) -> Principal:
    return insert_user(services.uow, f"bad-{uuid.uuid4().hex[:8]}@example.com")


# -- conversations --------------------------------------------------------------------------------


@BAD_TEXT
def test_conversation_titles_new_and_renamed(services: Services, user: Principal, bad: str) -> None:
    with refused("title"):
        services.conversations.create(user, provider="offline", model="offline", title=bad)
    conv = services.conversations.create(user, provider="offline", model="offline", title="Ok")
    with refused("title"):
        services.conversations.rename(user, conv.id, bad)
    assert [c.title for c in services.conversations.list(user)] == ["Ok"]
    with refused("model"):
        services.conversations.set_model(user, conv.id, "offline", bad)


def test_a_long_title_is_cut_and_whitespace_folded(services: Services, user: Principal) -> None:
    conv = services.conversations.create(user, provider="offline", model="offline", title="a")
    renamed = services.conversations.rename(user, conv.id, "x\ty\nz " + "w" * 500)
    assert renamed.title.startswith("x y z w") and len(renamed.title) == 120


# -- memory -----------------------------------------------------------------------------------------


@BAD_TEXT
def test_memory_text_fields(services: Services, user: Principal, bad: str) -> None:
    with refused("content"):
        services.memory.store(user, bad)
    with refused("query"):
        services.memory.search(user, bad)
    with refused("contains"):
        services.memory.browse(user, contains=bad)
    assert services.memory.browse(user) == []


def test_memory_keeps_lines_and_refuses_bad_metadata_and_numbers(
    services: Services, user: Principal
) -> None:
    kept = services.memory.store(user, "line one\r\n\tline two", metadata={"tag": "a\nb"})
    assert kept.content == "line one\n\tline two"
    for metadata in (deep(50), {"x": math.nan}, {"x": NUL}, {"x": "y" * 20_000}):
        with refused("metadata"):
            services.memory.store(user, "fine", metadata=metadata)
    assert [m.id for m in services.memory.browse(user)] == [kept.id]
    with refused("min_score"):
        services.memory.search(user, "line", min_score=math.nan)
    for k in (math.inf, "many"):
        with refused("k"):
            services.memory.search(user, "line", k=k)  # type: ignore[arg-type]
    assert len(services.memory.search(user, "line", k=10**30)) == 1  # clamped, not crashed
    assert len(services.memory.search(user, "line", k=-5)) == 1
    for batch in (-1, 0, 10**9):
        with refused("batch_size"):
            services.memory.reembed(user, "lexical", batch_size=batch)


# -- knowledge graph --------------------------------------------------------------------------------


@BAD_TEXT
def test_graph_forms_and_searches(services: Services, user: Principal, bad: str) -> None:
    kg = services.knowledge_graph
    with refused("name"):
        kg.create_entity(user, bad)
    with refused("type"):
        kg.create_entity(user, "Ada", bad)
    with refused("description"):
        kg.create_entity(user, "Ada", "person", bad)
    with refused("query"):
        kg.search_entities(user, bad)
    with refused("type"):
        kg.list_entities(user, type_=bad)
    ada = kg.create_entity(user, "Ada", "person")
    with refused("name"):
        kg.update_entity(user, ada.id, name=bad)
    with refused("relation_types"):
        kg.neighbourhood(user, ada.id, relation_types=[bad])
    assert [e.name for e in kg.list_entities(user)] == ["Ada"]


def test_graph_properties_and_numbers(services: Services, user: Principal) -> None:
    kg = services.knowledge_graph
    for props in (deep(30), {"w": math.inf}, {"k\x00": 1}, {"n": 10**40}):
        with refused("properties"):
            kg.create_entity(user, "Ada", properties=props)
    a = kg.create_entity(user, "Ada", properties={"born": 1815, "note": "line\nbreak"})
    b = kg.create_entity(user, "Babbage")
    with refused("properties"):
        kg.create_relation(user, a.id, b.id, "knows", properties=deep(30))
    for weight in (math.nan, math.inf, 10**400):
        with refused("weight"):
            kg.create_relation(user, a.id, b.id, "knows", weight=weight)  # type: ignore[arg-type]
    with refused("node_limit"):
        kg.neighbourhood(user, a.id, node_limit=math.inf)  # type: ignore[arg-type]
    assert kg.shortest_path(user, a.id, b.id, max_depth=10**30).found is False
    assert kg.stats(user)["relations"] == 0


@pytest.mark.parametrize(
    ("data", "fmt", "reason"),
    [
        (b"name,type\n\xff\xfeAda,person\n", "csv", "not UTF-8 text (invalid byte at position 10)"),
        (b'{"entities": [{"name": "Ada\xc3"}]}', "json", "not UTF-8 text"),
        ("[" * 2000 + "]" * 2000, "json", "nested too deeply"),
        (
            '{"entities": [{"name": "Ada", "properties": ' + "[" * 50 + "]" * 50 + "}]}",
            "json",
            "nested too deeply",
        ),
        ("name\n" + "x" * 1_000_000 + "\n", "csv", "not readable as CSV"),
        (
            '{"relations": [{"source": "a", "target": "b", "type": "t", "weight": 1'
            + "0" * 400
            + "}]}",
            "json",
            "weight",
        ),
        ('{"entities": [{"name": "A\\u0000da"}]}', "json", "NUL"),
        ('{"entities": [{"name": "\\ud800"}]}', "json", "surrogate"),
        (
            '{"entities": [{"name": "Ada", "description": "' + "d" * 1_000_000 + '"}]}',
            "json",
            "description is longer",
        ),
        ('{"entities": [{"name": "Ada", "properties": {"x": NaN}}]}', "json", "not finite"),
        ("x" * (21 * 1024 * 1024), "csv", "larger than 20 MB"),
    ],
    ids=[
        "csv-not-utf8",
        "json-not-utf8",
        "json-2000-deep",
        "properties-too-deep",
        "csv-1mb-cell",
        "huge-weight",
        "nul-name",
        "surrogate-name",
        "1mb-description",
        "nan-property",
        "21mb-file",
    ],
)
def test_graph_imports_reject_the_file_or_row_and_write_nothing(
    services: Services, user: Principal, data: str | bytes, fmt: str, reason: str
) -> None:
    report = services.knowledge_graph.import_data(user, data, fmt)  # type: ignore[arg-type]
    assert not report.imported
    assert any(reason in r.reason for r in report.rejected), report.rejected
    assert services.knowledge_graph.stats(user)["entities"] == 0


# -- secrets ----------------------------------------------------------------------------------------


@BAD_TEXT
def test_secret_fields(services: Services, user: Principal, bad: str) -> None:
    with refused("name"):
        services.secrets.create(user, "custom", bad, "value-1234567890")
    with refused("value"):
        services.secrets.create(user, "custom", "mine", bad)
    with refused("base_url"):
        services.secrets.create(user, "custom", "mine", "value-1234567890", base_url=bad)
    assert services.secrets.list(user) == []


# -- accounts, sign-in, admin -----------------------------------------------------------------------


@BAD_TEXT
def test_account_fields(services: Services, bad: str) -> None:
    with refused("email"):
        services.accounts.register(f"{bad}@example.com", PW, actor=OPERATOR)
    with refused("display_name"):
        services.accounts.register(f"n-{uuid.uuid4().hex[:6]}@example.com", PW, bad, actor=OPERATOR)
    with refused("email"):
        services.sign_in.login(f"{bad}@example.com", PW)
    with refused("query"):
        services.admin.list_users(OPERATOR, bad)
    with refused("action"):
        services.admin.audit_log(OPERATOR, action=bad)


def test_passwords_that_cannot_be_encoded_are_refused_not_crashed(services: Services) -> None:
    email = f"pw-{uuid.uuid4().hex[:6]}@example.com"
    with refused("password"):
        services.accounts.register(email, "pass\ud800word!", actor=OPERATOR)
    me = services.accounts.register(email, PW, actor=OPERATOR)
    with refused("password"):
        services.sign_in.login(email, "pass\ud800word!")
    with refused("password"):
        services.accounts.change_password(me, PW, "new\udc80password")
    with refused("password"):
        services.admin.reset_password(OPERATOR, me.user_id, "new\udc80password")
    # NUL and control characters stay allowed in passwords: the rules there are unchanged.
    services.accounts.change_password(me, PW, "with\x00nul\x1bpassword")
    assert services.sign_in.login(email, "with\x00nul\x1bpassword").principal == me


# -- prices, budgets, usage --------------------------------------------------------------------------


def _price(model: str, value: object = "1") -> PriceInput:
    return PriceInput(
        provider="openai",
        model=model,
        input_per_mtok=value,  # type: ignore[arg-type]
        output_per_mtok=Decimal("1"),
        cache_read_per_mtok=Decimal("0"),
        cache_write_per_mtok=Decimal("0"),
        effective_from=date(2026, 1, 1),
    )


@BAD_TEXT
def test_price_model_names(services: Services, bad: str) -> None:
    with refused("model"):
        services.pricing.add_price(OPERATOR, _price(bad))


@pytest.mark.parametrize("value", ["-1", "1e30", "NaN", "Infinity", "sNaN", "1\x00"])
def test_prices_and_budgets_refuse_strange_numbers(services: Services, value: str) -> None:
    with refused("input_per_mtok"):
        services.pricing.add_price(OPERATOR, _price(f"m-{uuid.uuid4().hex[:6]}", value))
    with refused("budget"):
        services.usage.set_default_budget(OPERATOR, value)
    with refused("budget"):
        services.usage.set_user_budget(OPERATOR, OPERATOR.user_id, value)


def test_usage_filters(services: Services, user: Principal) -> None:
    today = date(2026, 6, 1)
    with refused("timezone"):
        services.usage.set_timezone(user, "Europe/Paris\x00")
    with refused("models"):
        services.usage.dashboard(user, UsageQuery(start=today, end=today, models=(NUL,)))
    with refused("page"):
        services.usage.dashboard(user, UsageQuery(start=today, end=today, page=10**30))
    with refused("days"):
        services.usage.usage_report(user, days=math.inf)  # type: ignore[arg-type]


# -- tool calls: what a model supplies ---------------------------------------------------------------


def test_a_tool_call_nested_deeper_than_any_tool_takes_is_kept_raw() -> None:
    raw = "{" + '"a":{' * 100_000 + "}" * 100_001
    call = ToolCallRequest.from_json("c1", "calculator", raw)  # no RecursionError
    assert not call.arguments_valid and call.arguments_raw == raw


def test_tool_call_ids_and_names_are_storable_text() -> None:
    call = ToolCallRequest(id="c\x001", name="calc\udc80" + "x" * 500, arguments={})
    assert "\x00" not in call.id and len(call.name) == 200
    call.name.encode("utf-8")


def test_tool_arguments_a_model_gets_wrong_are_refused_and_recorded_safely(
    services: Services, user: Principal
) -> None:
    bad_calls = [
        ToolCallRequest("c1", "memory_store", {"content": "remember\x00this"}),
        ToolCallRequest("c2", "memory_store", {"content": "x", "metadata": deep(40)}),
        ToolCallRequest("c3", "calculator", {"expression": "1+1", "pad": "y" * 100_000}),
        ToolCallRequest.from_json("c4", "calculator", "[" * 5000 + "]" * 5000),
        ToolCallRequest("c5", "no\x00such\udc80tool", {"a": "\x00"}),
        ToolCallRequest("c6", "current_time", {"timezone": "Z" * 10_000}),
        ToolCallRequest("c7", "memory_store", {"content": "ok\x1b[2J"}),
    ]

    def model(messages: list[ChatMessage], tools: list[ToolDefinition]) -> ScriptedReply:
        if not any(m.role == "tool" for m in messages):
            return ScriptedReply(tool_calls=bad_calls)
        return ScriptedReply(text="done")

    chat = make_chat(services, fake(model))
    conv = chat.conversations.create(user, provider="offline", model="m")
    events = run_all(chat, user, conv.id, "go")
    finished = [e for e in events if isinstance(e, ev.ToolCallFinished)]
    assert [f.status for f in finished] == ["error"] * len(bad_calls)
    assert not any(
        isinstance(e, ev.ToolCallStarted) and e.call_id in ("c1", "c2", "c3") for e in events
    )
    assert "NUL" in finished[0].result["error"]
    assert "nested too deeply" in finished[1].result["error"]
    assert "too large" in finished[2].result["error"]
    assert "Unknown time zone" in finished[5].result["error"]
    assert isinstance(events[-1], ev.RunCompleted)
    _, _, calls = rows(services, user, events[0].run_id)
    assert len(calls) == len(bad_calls)
    for c in calls:  # what was stored is valid JSON without NUL or surrogates
        text = json.dumps(c.arguments, allow_nan=False) + json.dumps(c.result, allow_nan=False)
        text.encode("utf-8")
        assert "\\u0000" not in text and "\x00" not in c.tool_id
    assert services.memory.browse(user) == []


def test_the_time_tool_refuses_a_giant_zone_name(services: Services, user: Principal) -> None:
    ctx = ToolContext(principal=user, services=SimpleNamespace(clock=services.clock))  # type: ignore[arg-type]
    with pytest.raises(ToolError, match="Unknown time zone"):
        current_time(ctx, {"timezone": "Z" * 10_000})
