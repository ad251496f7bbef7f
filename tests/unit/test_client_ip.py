"""The client IP: the connection's peer; X-Forwarded-For only behind a trusted proxy."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from jarvis.security.client_ip import client_ip, forwarded_by_untrusted_peer, request_scheme

XFF = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}


def test_forwarded_for_is_ignored_without_a_trusted_proxy() -> None:
    assert client_ip("198.51.100.7", XFF, []) == "198.51.100.7"
    assert client_ip("198.51.100.7", {"x-forwarded-for": "1.2.3.4"}, []) == "198.51.100.7"


def test_forwarded_for_is_ignored_when_the_peer_is_not_the_trusted_proxy() -> None:
    assert client_ip("198.51.100.7", XFF, ["10.0.0.0/8"]) == "198.51.100.7"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() -> None:
    # The client may have sent "6.6.6.6" itself; the proxy appended the real peer.
    assert client_ip("10.0.0.5", XFF, ["10.0.0.0/8"]) == "203.0.113.9"
    chain = {"X-Forwarded-For": "203.0.113.9, 10.0.0.7"}
    assert client_ip("10.0.0.5", chain, ["10.0.0.0/8"]) == "203.0.113.9"


def test_a_local_proxy_counts_as_loopback() -> None:
    # Streamlit reports None for 127.0.0.1 / ::1.
    assert client_ip(None, XFF, ["127.0.0.1"]) == "203.0.113.9"


def test_loopback_is_an_address_like_any_other() -> None:
    # Untrusted, a local reverse proxy is one client: per-IP limits still apply to it.
    assert client_ip(None, XFF, []) == "127.0.0.1"
    assert client_ip(None, {}, []) == "127.0.0.1"
    assert client_ip("::1", {}, []) == "::1"


def test_forwarded_headers_from_an_untrusted_peer_are_noticed() -> None:
    assert forwarded_by_untrusted_peer(None, XFF, [])
    assert forwarded_by_untrusted_peer("10.0.0.5", {"Forwarded": "for=1.2.3.4"}, ["10.1.0.0/16"])
    assert forwarded_by_untrusted_peer("10.0.0.5", {"X-Real-IP": "1.2.3.4"}, [])
    assert not forwarded_by_untrusted_peer(None, XFF, ["127.0.0.1"])
    assert not forwarded_by_untrusted_peer("198.51.100.7", {"Host": "jarvis"}, [])


def test_garbage_is_never_an_address() -> None:
    assert client_ip("10.0.0.5", {"X-Forwarded-For": "not-an-ip"}, ["10.0.0.0/8"]) == "10.0.0.5"
    assert client_ip("garbage", {}, []) is None
    assert client_ip("10.0.0.5", {"X-Forwarded-For": ""}, ["10.0.0.0/8"]) == "10.0.0.5"
    assert client_ip("2001:db8::1", {}, []) == "2001:db8::1"


def test_the_app_warns_once_about_a_proxy_nobody_trusted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind nginx on the same host without JARVIS_TRUSTED_PROXIES: loopback is the client
    (limits still apply to it) and the log says what to set, once."""
    import streamlit as st

    from jarvis.ui import session

    session._warn_untrusted_proxy.cache_clear()
    browser = SimpleNamespace(headers={**XFF, "User-Agent": "UA"}, ip_address=None)
    monkeypatch.setattr(st, "context", browser)
    services = SimpleNamespace(settings=SimpleNamespace(trusted_proxies=[]))
    with caplog.at_level(logging.WARNING, logger="jarvis.ui.session"):
        assert session.client_details(services) == ("127.0.0.1", "UA")  # type: ignore[arg-type]
        assert session.client_details(services) == ("127.0.0.1", "UA")  # type: ignore[arg-type]
    warnings = [
        r.getMessage() for r in caplog.records if "JARVIS_TRUSTED_PROXIES" in r.getMessage()
    ]
    assert len(warnings) == 1 and "JARVIS_TRUSTED_PROXIES=127.0.0.1" in warnings[0]
    trusted = SimpleNamespace(settings=SimpleNamespace(trusted_proxies=["127.0.0.1"]))
    assert session.client_details(trusted) == ("203.0.113.9", "UA")  # type: ignore[arg-type]


def test_the_scheme_is_the_connections_unless_a_trusted_proxy_says_https() -> None:
    tls = {"X-Forwarded-Proto": "https"}
    assert request_scheme("203.0.113.1", "http", tls, []) == "http"  # nobody trusted
    assert request_scheme("203.0.113.1", "http", tls, ["10.0.0.0/8"]) == "http"  # not the proxy
    assert request_scheme("10.0.0.2", "http", tls, ["10.0.0.0/8"]) == "https"
    assert request_scheme("10.0.0.2", "http", {"X-Forwarded-Proto": "gopher"}, ["10.0.0.0/8"]) == (
        "http"
    )
    assert request_scheme("10.0.0.2", "https", {}, ["10.0.0.0/8"]) == "https"
    assert request_scheme(None, "wss", {}, []) == "https"
