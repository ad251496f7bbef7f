"""Admin-registered MCP servers as Jarvis tools: the test server (``tests/mcp_test_server.py``,
the official SDK) over stdio and over streamable HTTP, called from chat turns whose model is
the real OpenAI SDK against the wire server scripting the tool calls."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from jarvis.bootstrap import Services
from jarvis.db.tables import McpServer
from jarvis.errors import (
    ConflictError,
    JarvisError,
    OutboundRefusedError,
    PermissionDeniedError,
    ToolError,
    ValidationError,
)
from jarvis.identity import Principal
from jarvis.llm.openai_provider import OpenAIProvider
from jarvis.security.outbound import OutboundPolicy
from jarvis.services.chat import events as ev
from jarvis.services.mcp import DATA_NOTE, CredentialSlot, McpServerInput, McpServerView
from jarvis.tools.mcp_client import McpClient, McpEndpoint
from jarvis.tracing import configure_tracing, reset_tracing
from tests.integration.chat_helpers import StaticProviders, make_chat, make_user, rows
from tests.llm_wire_server import (
    Reply,
    WireServer,
    fast_retry,
    openai_text_stream,
    openai_tool_stream,
    openai_usage,
)

ROOT = Path(__file__).resolve().parents[2]
ALICE_TOKEN = "alice-composio-token-1111"
BOB_TOKEN = "bob-composio-token-2222"
#: The machine is shared: starting a Python MCP server may take several seconds.
START_SECONDS = 90


def fingerprint(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_http_server() -> tuple[subprocess.Popen[bytes], str]:
    """The test server over streamable HTTP on a free loopback port; (process, URL)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.mcp_test_server", "http", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the HTTP test MCP server did not start")


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    process, url = start_http_server()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture
def chat(services: Services, wire: WireServer) -> Services:
    policy, _ = fast_retry(1)
    provider = OpenAIProvider("sk-test", base_url=wire.url + "/v1", retry=policy)
    built = make_chat(services, provider, outbound_allowlist=["127.0.0.1"])
    assert isinstance(built.providers, StaticProviders)
    return built


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing(exporter=exporter, synchronous=True, install_global=False)
    yield exporter
    reset_tracing()


@pytest.fixture
def admin(chat: Services) -> Principal:
    return make_user(chat, role="admin")


def stdio_input(**changes: object) -> McpServerInput:
    data = McpServerInput(
        name="testmcp",
        transport="stdio",
        command=sys.executable,
        args=("-m", "tests.mcp_test_server"),
        env=(CredentialSlot(name="TEST_MCP_TOKEN", secret_provider="composio"),),
        timeout_seconds=START_SECONDS,
    )
    return dataclasses.replace(data, **changes)  # type: ignore[arg-type]


def http_input(url: str, **changes: object) -> McpServerInput:
    data = McpServerInput(
        name="webmcp",
        transport="http",
        url=url,
        headers=(
            CredentialSlot(name="Authorization", prefix="Bearer ", secret_provider="composio"),
        ),
        timeout_seconds=30,
        default_allowed=True,
    )
    return dataclasses.replace(data, **changes)  # type: ignore[arg-type]


def user_with_key(chat: Services, token: str) -> Principal:
    user = make_user(chat)
    chat.secrets.create(user, "composio", None, token)
    return user


def turn(
    chat: Services, wire: WireServer, user: Principal, wire_name: str, arguments: object
) -> tuple[list[ev.RunEvent], str]:
    """One chat turn whose model calls ``wire_name`` once, then answers; (events, the tool
    message the model got back)."""
    wire.requests.clear()
    wire.script(
        Reply.sse(openai_tool_stream([("call_1", wire_name, [json.dumps(arguments)])])),
        Reply.sse(openai_text_stream(["Done."], usage=openai_usage(10, 2))),
    )
    conv = chat.conversations.create(user, provider="offline", model="m")
    events = list(chat.runs.run(user, conv.id, "use the tool"))
    tool_messages = [
        m["content"]
        for m in wire.requests[-1].body["messages"]
        if m.get("role") == "tool" and m.get("tool_call_id") == "call_1"
    ]
    return events, tool_messages[0]


def finished(events: list[ev.RunEvent]) -> ev.ToolCallFinished:
    [done] = [e for e in events if isinstance(e, ev.ToolCallFinished)]
    return done


def register(chat: Services, admin: Principal, data: McpServerInput) -> McpServerView:
    server = chat.mcp.create(admin, data)
    assert server.discovery_error is None, server.discovery_error
    return server


# -- stdio: the proof of the issue -----------------------------------------------------------


def test_a_stdio_server_s_tool_runs_with_the_calling_users_own_key_and_only_if_allowed(
    chat: Services, wire: WireServer, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = register(chat, admin, stdio_input())
    assert {t.tool_id for t in server.tools} >= {"testmcp.echo", "testmcp.slow", "testmcp.big"}
    alice = user_with_key(chat, ALICE_TOKEN)
    bob = user_with_key(chat, BOB_TOKEN)

    # Listed like a built-in, with its description, denied until allowed (the server default).
    views = {v.tool.id: v for v in chat.permissions.list_for(alice)}
    echo = views["testmcp.echo"]
    assert echo.tool.group == "testmcp" and "fingerprint" in echo.tool.description
    assert echo.state == "default" and not echo.allowed and not echo.usable
    chat.permissions.set(alice, "testmcp.echo", True)
    assert "testmcp.echo" in [t.id for t in chat.permissions.tools_for(alice)]
    assert "testmcp.echo" not in [t.id for t in chat.permissions.tools_for(bob)]

    events, content = turn(chat, wire, alice, "testmcp__echo", {"message": "hello"})
    # The model was offered the tool under its wire name (OpenAI function names have no dot).
    offered = [t["function"]["name"] for t in wire.requests[0].body["tools"]]
    assert "testmcp__echo" in offered and "testmcp.echo" not in offered
    done = finished(events)
    assert done.tool_id == "testmcp.echo" and done.status == "ok"
    assert f"caller: {fingerprint(ALICE_TOKEN)}" in done.result["content"]
    assert done.result["note"] == DATA_NOTE  # labelled as data, not instructions
    assert f"caller: {fingerprint(ALICE_TOKEN)}" in content  # what the model read
    assert events[-1].type == "run_completed"
    _, _, calls = rows(chat, alice, events[0].run_id)
    assert [(c.tool_id, c.status) for c in calls] == [("testmcp.echo", "ok")]

    # Bob never allowed it: his turn's call is refused with the permission message, and the
    # server is never started for him.
    events, content = turn(chat, wire, bob, "testmcp__echo", {"message": "hello"})
    [denied] = [e for e in events if isinstance(e, ev.ToolCallDenied)]
    assert denied.reason == "The user has not allowed the tool testmcp.echo."
    assert "not allowed" in content and fingerprint(BOB_TOKEN) not in content
    assert events[-1].type == "run_completed"

    # Bad arguments (the schema wants a message) fail that call only, before the server.
    events, content = turn(chat, wire, alice, "testmcp__echo", {"text": "no message"})
    done = finished(events)
    assert done.status == "error" and "Invalid arguments" in done.result["error"]
    assert "message" in done.result["error"]
    assert events[-1].type == "run_completed"

    for record in caplog.records:
        assert ALICE_TOKEN not in record.getMessage() and BOB_TOKEN not in str(record.__dict__)
        assert ALICE_TOKEN not in str(record.__dict__)


def test_a_tool_needing_a_key_the_user_lacks_is_not_offered_and_says_so(
    chat: Services, wire: WireServer, admin: Principal
) -> None:
    register(chat, admin, stdio_input(default_allowed=True))
    keyless = make_user(chat)
    [view] = [v for v in chat.permissions.list_for(keyless) if v.tool.id == "testmcp.echo"]
    assert view.allowed and not view.secret_available and not view.usable
    assert view.tool.required_secret == "composio"
    events, content = turn(chat, wire, keyless, "testmcp__echo", {"message": "x"})
    assert "composio key the user has not added" in finished(events).result["error"]
    assert "composio" in content


# -- streamable HTTP: headers, failures, bounds -----------------------------------------------


def test_an_http_server_gets_the_users_key_in_its_header(
    chat: Services, wire: WireServer, admin: Principal, http_server: str
) -> None:
    register(chat, admin, http_input(http_server))
    alice = user_with_key(chat, ALICE_TOKEN)
    events, content = turn(chat, wire, alice, "webmcp__echo", {"message": "hi"})
    done = finished(events)
    assert done.status == "ok", done.result
    assert f"caller: {fingerprint('Bearer ' + ALICE_TOKEN)}" in done.result["content"]


def test_a_server_that_errors_or_echoes_the_key_never_shows_the_key(
    chat: Services,
    wire: WireServer,
    admin: Principal,
    http_server: str,
    caplog: pytest.LogCaptureFixture,
    spans: InMemorySpanExporter,
) -> None:
    caplog.set_level(logging.DEBUG)
    register(chat, admin, http_input(http_server))
    alice = user_with_key(chat, ALICE_TOKEN)

    events, content = turn(chat, wire, alice, "webmcp__broken", {})
    done = finished(events)
    assert done.status == "error"
    assert "webmcp.broken reported an error" in done.result["error"]
    assert "the widget is jammed" in done.result["error"]
    assert events[-1].type == "run_completed"

    events, leaked = turn(chat, wire, alice, "webmcp__leak", {})
    assert finished(events).status == "ok"
    assert "[redacted credential]" in finished(events).result["content"]
    everything = json.dumps([dataclasses.asdict(e) for e in events], default=str)
    for shown in (content, leaked, everything):
        assert ALICE_TOKEN not in shown
    _, _, calls = rows(chat, alice, events[0].run_id)
    assert ALICE_TOKEN not in json.dumps([c.result for c in calls])
    tool_spans = [s for s in spans.get_finished_spans() if s.name == "agent.tool_call"]
    assert {dict(s.attributes or {})["tool.id"] for s in tool_spans} == {
        "webmcp.broken",
        "webmcp.leak",
    }
    traced = repr([(dict(s.attributes or {}), s.events, s.status) for s in tool_spans])
    assert ALICE_TOKEN not in repr([s.to_json() for s in spans.get_finished_spans()])
    assert ALICE_TOKEN not in traced
    leaks = [r for r in caplog.records if ALICE_TOKEN in str(r.__dict__)]
    assert not leaks, [(r.name, str(r.__dict__)[:600]) for r in leaks[:3]]


def test_a_slow_server_times_out_and_the_run_goes_on(
    chat: Services, wire: WireServer, admin: Principal, http_server: str
) -> None:
    server = register(chat, admin, http_input(http_server))
    chat.mcp.update(admin, server.id, http_input(http_server, timeout_seconds=2))
    alice = user_with_key(chat, ALICE_TOKEN)
    started = time.monotonic()
    events, content = turn(chat, wire, alice, "webmcp__slow", {"seconds": 60})
    assert time.monotonic() - started < 30
    done = finished(events)
    assert done.status == "error"
    assert done.result["error"] == "The MCP server webmcp did not answer within 2 s."
    assert "did not answer" in content and events[-1].type == "run_completed"


def test_an_oversized_result_is_cut_to_the_servers_limit_and_flagged(
    chat: Services, wire: WireServer, admin: Principal, http_server: str
) -> None:
    register(chat, admin, http_input(http_server, max_result_bytes=1000))
    alice = user_with_key(chat, ALICE_TOKEN)
    events, content = turn(chat, wire, alice, "webmcp__big", {"n": 50_000})
    done = finished(events)
    assert done.status == "ok"
    assert done.result["truncated"] is True and done.result["original_bytes"] == 50_000
    assert len(done.result["content"]) == 1000
    assert len(content.encode()) < 3000


def test_a_server_that_went_down_fails_the_call_not_the_run(
    chat: Services, wire: WireServer, admin: Principal
) -> None:
    process, url = start_http_server()
    try:
        register(chat, admin, http_input(url, name="doomed"))
    finally:
        process.terminate()
        process.wait(timeout=30)
    alice = user_with_key(chat, ALICE_TOKEN)
    events, content = turn(chat, wire, alice, "doomed__echo", {"message": "anyone?"})
    done = finished(events)
    assert done.status == "error"
    assert done.result["error"] == "The MCP server doomed could not be reached (it may be down)."
    assert events[-1].type == "run_completed"
    # An admin's refresh records the failure on the server and keeps the tools it had.
    [server] = [s for s in chat.mcp.list_servers(admin) if s.name == "doomed"]
    refreshed = chat.mcp.refresh(admin, server.id)
    assert refreshed.discovery_error and "could not be reached" in refreshed.discovery_error
    assert refreshed.tools


def test_a_disabled_or_deleted_server_s_tools_disappear(
    chat: Services, admin: Principal, http_server: str
) -> None:
    server = register(chat, admin, http_input(http_server))
    user = make_user(chat)
    assert "webmcp.echo" in {v.tool.id for v in chat.permissions.list_for(user)}
    chat.mcp.set_enabled(admin, server.id, False)
    assert "webmcp.echo" not in {v.tool.id for v in chat.permissions.list_for(user)}
    chat.mcp.set_enabled(admin, server.id, True)
    chat.mcp.delete(admin, server.id)
    assert not any(v.tool.group for v in chat.permissions.list_for(user))


# -- registration rules: SSRF, admins only, names ----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/mcp",
        "http://10.1.2.3/mcp",
        "http://192.168.0.10:8080/mcp",
        "http://[::1]:9000/mcp",
    ],
)
def test_internal_addresses_are_refused_at_registration(
    chat: Services, admin: Principal, url: str
) -> None:
    with pytest.raises(OutboundRefusedError) as refused:
        chat.mcp.create(admin, http_input(url))
    assert refused.value.field == "url" and "JARVIS_OUTBOUND_ALLOWLIST" in str(refused.value)
    assert chat.mcp.list_servers(admin) == []


def test_loopback_is_refused_unless_allow_listed(
    services: Services, wire: WireServer, http_server: str
) -> None:
    closed = make_chat(
        services, OpenAIProvider("sk-test", base_url=wire.url + "/v1"), outbound_allowlist=[]
    )
    admin = make_user(closed, role="admin")
    with pytest.raises(OutboundRefusedError):
        closed.mcp.create(admin, http_input(http_server))
    opened = make_chat(
        services,
        OpenAIProvider("sk-test", base_url=wire.url + "/v1"),
        outbound_allowlist=["127.0.0.1"],
    )
    assert opened.mcp.create(admin, http_input(http_server)).discovery_error is None


def test_a_name_that_points_inside_by_the_time_of_the_call_is_refused(http_server: str) -> None:
    """DNS rebinding: the server's name resolved to a public address when it was checked and
    to loopback when the client connects. The connection is checked where it is opened, so
    nothing reaches the local server; allow-listed, the same name connects (to the address
    that was checked, with the name still in the Host header)."""
    where = urlsplit(http_server)
    url = f"http://rebind.example:{where.port}{where.path}"
    answers = [["93.184.216.34"]]  # the check before the call sees a public address ...
    rebinding = OutboundPolicy(
        resolver=lambda host, port: answers.pop() if answers else ["127.0.0.1"]
    )
    endpoint = McpEndpoint(server="rebind", transport="http", url=url, timeout_seconds=10)
    with pytest.raises(ToolError) as refused:
        McpClient(rebinding).list_tools(endpoint)  # ... the connection would go to loopback
    assert "rebind is refused" in str(refused.value) and "loopback" in str(refused.value)

    allowed = OutboundPolicy(allowlist=["127.0.0.1"], resolver=lambda host, port: ["127.0.0.1"])
    assert [t.name for t in McpClient(allowed).list_tools(endpoint)]


def test_only_admins_register_servers_and_the_database_agrees(
    chat: Services, admin: Principal, http_server: str
) -> None:
    user = make_user(chat)
    with pytest.raises(PermissionDeniedError):
        chat.mcp.create(user, http_input(http_server))
    with pytest.raises(PermissionDeniedError):
        chat.mcp.list_servers(user)
    # Even past the service, the app role's row-level security refuses a non-admin's write.
    with pytest.raises(JarvisError), chat.uow(user) as uow:
        uow.mcp_servers.add(McpServer(name="sneaky", transport="http", url=http_server))
    server = register(chat, admin, http_input(http_server))
    with chat.uow(user) as uow:  # everyone reads the tool list ...
        assert [s.name for s in uow.mcp_servers.all()] == ["webmcp"]
        # ... but an update by a non-admin changes nothing
        changed = uow.session.execute(text("update mcp_servers set enabled = false"))
        assert changed.rowcount == 0  # type: ignore[attr-defined]
        uow.commit()
    assert chat.mcp.get(admin, server.id).enabled


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "x" * 40}, "name"),
        ({"transport": "ftp"}, "transport"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_result_bytes": 10}, "max_result_bytes"),
        ({"env": (CredentialSlot(name="PATH", secret_provider="composio"),)}, "env"),
        ({"env": (CredentialSlot(name="TOKEN", secret_provider="nope"),)}, "env"),
        ({"command": ""}, "command"),
    ],
)
def test_bad_registrations_name_the_field(
    chat: Services, admin: Principal, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as bad:
        chat.mcp.create(admin, stdio_input(**changes))
    assert bad.value.field == field


def test_names_are_unique(chat: Services, admin: Principal, http_server: str) -> None:
    register(chat, admin, http_input(http_server))
    with pytest.raises(ConflictError):
        chat.mcp.create(admin, http_input(http_server))
