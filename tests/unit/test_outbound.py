"""The SSRF guard: users' base URLs reach public addresses only, unless an admin allow-listed
the host or its network (JARVIS_OUTBOUND_ALLOWLIST); checked when saved and at each
connection (redirects and DNS changes included)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from jarvis.config import load_settings
from jarvis.errors import ConfigError, OutboundRefusedError, ProviderBadRequestError
from jarvis.llm.base import ChatMessage
from jarvis.llm.openai_provider import OpenAIProvider
from jarvis.llm.outbound_http import guarded_openai_client, guarded_transport
from jarvis.security.outbound import OutboundPolicy, parse_allowlist
from tests.llm_wire_server import Reply, WireServer, fast_retry, openai_text_stream

PUBLIC = "93.184.216.34"


def resolver(*addresses: str):  # type: ignore[no-untyped-def]
    """A resolver answering ``addresses`` for any name (no network)."""

    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def unresolvable(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://127.0.0.1:5432/", "loopback"),
        ("http://localhost:11434/v1", "loopback"),  # a name that resolves to 127.0.0.1
        ("http://10.1.2.3/v1", "private network"),
        ("http://192.168.1.10:8000/v1", "private network"),
        ("http://172.16.0.5/v1", "private network"),
        ("http://[::1]:8080/v1", "loopback"),
        ("http://[fc00::1]/v1", "private network"),
        ("http://[fe80::1]/v1", "link-local"),
        ("http://169.254.10.20/v1", "link-local"),
        ("http://0.0.0.0:8000/v1", "unspecified"),
        ("http://224.0.0.1/v1", "multicast"),
        ("http://240.0.0.1/v1", "reserved"),
        ("http://100.64.0.1/v1", "not a public"),  # shared (carrier-grade NAT)
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://[::ffff:127.0.0.1]/v1", "loopback"),  # IPv4-mapped
    ],
)
def test_internal_targets_are_refused(url: str, why: str) -> None:
    with pytest.raises(OutboundRefusedError, match=why) as info:
        OutboundPolicy().check_url(url)
    assert info.value.field == "base_url"
    assert "an admin can allow it with JARVIS_OUTBOUND_ALLOWLIST" in str(info.value)


def test_the_private_network_message_reads_as_documented() -> None:
    with pytest.raises(OutboundRefusedError) as info:
        OutboundPolicy().check_url("http://10.1.2.3/v1")
    assert str(info.value) == (
        "That address is on a private network; an admin can allow it with "
        "JARVIS_OUTBOUND_ALLOWLIST."
    )


def test_public_addresses_are_allowed() -> None:
    policy = OutboundPolicy()
    policy.check_url(f"https://{PUBLIC}/v1")
    policy.check_url("http://[2606:4700:4700::1111]:8080/v1")
    OutboundPolicy(resolver=resolver(PUBLIC)).check_url("https://llm.example.com/v1")


def test_a_name_with_one_internal_address_is_refused() -> None:
    policy = OutboundPolicy(resolver=resolver(PUBLIC, "10.0.0.7"))
    with pytest.raises(OutboundRefusedError, match="private network"):
        policy.check_url("https://llm.example.com/v1")


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/", "file:///etc/passwd", "gopher://x/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(OutboundRefusedError, match="Only http"):
        OutboundPolicy().check_url(url)


def test_allow_listed_hosts_and_networks_pass() -> None:
    policy = OutboundPolicy(["localhost", "127.0.0.1", "10.0.0.0/8", "::1"])
    for url in (
        "http://localhost:11434/v1",
        "http://127.0.0.1:8000/v1",
        "http://10.1.2.3/v1",
        "http://[::1]:8080/v1",
        f"http://{PUBLIC}/v1",
    ):
        policy.check_url(url)
    with pytest.raises(OutboundRefusedError):
        policy.check_url("http://169.254.169.254/")  # not in the list: still refused
    with pytest.raises(OutboundRefusedError):
        policy.check_url("http://192.168.1.1/")


def test_an_allow_listed_name_is_trusted_whatever_it_resolves_to() -> None:
    policy = OutboundPolicy(["ollama.internal"], resolver=resolver("10.9.8.7"))
    policy.check_url("http://OLLAMA.internal:11434/v1")
    assert policy.connect_addresses("ollama.internal", 11434) == ["10.9.8.7"]
    with pytest.raises(OutboundRefusedError):
        policy.check_url("http://other.internal/v1")


def test_a_name_that_does_not_resolve_may_be_saved() -> None:
    """Nothing can connect to it; the check at connection time still applies later."""
    OutboundPolicy(resolver=unresolvable).check_url("http://not-yet.example/v1")
    with pytest.raises(OSError):
        OutboundPolicy(resolver=unresolvable).connect_addresses("not-yet.example", 80)


def test_a_name_that_changes_address_is_refused_at_connection() -> None:
    answers = [[PUBLIC], ["169.254.169.254"]]
    policy = OutboundPolicy(resolver=lambda host, port: answers.pop(0))
    policy.check_url("http://rebind.example/v1")  # when saved: public
    with pytest.raises(OutboundRefusedError, match="metadata"):
        policy.connect_addresses("rebind.example", 80)  # when connecting: the metadata service


def test_allowlist_entries_are_validated() -> None:
    hosts, networks = parse_allowlist(["localhost", " 10.0.0.0/8 ", "[::1]", "Ollama.Lan."])
    assert hosts == {"localhost", "ollama.lan"}
    assert [str(n) for n in networks] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match="host names, IP addresses or networks"):
        parse_allowlist(["http://localhost"])


def test_the_setting_is_a_comma_separated_list(tmp_path: Path) -> None:
    settings = load_settings(
        env="test", data_dir=tmp_path, outbound_allowlist="localhost, 127.0.0.1,10.0.0.0/8"
    )
    assert settings.outbound_allowlist == ["localhost", "127.0.0.1", "10.0.0.0/8"]
    assert load_settings(env="test", data_dir=tmp_path).outbound_allowlist == []
    with pytest.raises(ConfigError, match="JARVIS_OUTBOUND_ALLOWLIST"):
        load_settings(env="test", data_dir=tmp_path, outbound_allowlist="localhost,http://x/")


# -- at connection time: the guarded HTTP transport -------------------------------------------


def test_the_guarded_transport_refuses_the_wire_server_without_the_allowlist(
    wire: WireServer,
) -> None:
    wire.script(Reply.page(b"hello"))
    with (
        httpx2.Client(transport=guarded_transport(OutboundPolicy())) as client,
        pytest.raises(OutboundRefusedError, match="loopback"),
    ):
        client.post(wire.url + "/v1")
    assert wire.requests == []  # no connection was made

    with httpx2.Client(transport=guarded_transport(OutboundPolicy(["127.0.0.1"]))) as client:
        assert client.post(wire.url + "/v1").text == "hello"


def test_a_redirect_to_an_internal_address_is_refused(wire: WireServer) -> None:
    wire.script(Reply(status=307, headers={"location": "http://169.254.169.254/latest/meta-data/"}))
    policy = OutboundPolicy(["127.0.0.1"])
    with (
        httpx2.Client(transport=guarded_transport(policy), follow_redirects=True) as client,
        pytest.raises(OutboundRefusedError, match="metadata"),
    ):
        client.post(wire.url + "/v1")


def test_the_openai_compatible_adapter_fails_clearly_without_retrying(wire: WireServer) -> None:
    wire.script(Reply.sse(openai_text_stream(["hi"])))
    policy, delays = fast_retry()
    provider = OpenAIProvider(
        "sk-local",
        name="openai_compatible",
        base_url=wire.url + "/v1",
        retry=policy,
        http_client=guarded_openai_client(OutboundPolicy()),
    )
    with pytest.raises(ProviderBadRequestError, match="JARVIS_OUTBOUND_ALLOWLIST"):
        list(provider.stream([ChatMessage("user", "hi")], [], model="m"))
    assert wire.requests == [] and delays == []
