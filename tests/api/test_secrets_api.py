"""``/secrets`` over HTTP: create, list, replace, rename, delete; values are write-only (no
response, log line or error carries one) and another user's secret is a 404."""

from __future__ import annotations

import logging

import pytest

from tests.api.conftest import ApiClient, principal, problem, register_and_login

OPENAI_KEY = "sk-apitest-" + "Q" * 24 + "wxyz"
NEW_OPENAI_KEY = "sk-apitest-" + "R" * 24 + "abcd"


def test_a_secret_is_created_listed_replaced_renamed_and_deleted_without_its_value(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    me = register_and_login(api)
    created = api.post(
        "/secrets", json={"provider": "openai", "value": OPENAI_KEY}, headers=me.headers
    )
    assert created.status_code == 201, created.text
    secret = created.json()
    assert secret["provider"] == "openai" and secret["name"] == "default"
    assert secret["last4"] == "wxyz" and secret["hint"] == "••••wxyz"
    assert "value" not in secret and OPENAI_KEY not in created.text

    listed = api.get("/secrets", headers=me.headers)
    assert listed.json() == [secret]
    assert OPENAI_KEY not in listed.text
    assert api.get(f"/secrets/{secret['id']}", headers=me.headers).json() == secret

    replaced = api.patch(
        f"/secrets/{secret['id']}", json={"value": NEW_OPENAI_KEY}, headers=me.headers
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["last4"] == "abcd" and replaced.json()["name"] == "default"
    assert NEW_OPENAI_KEY not in replaced.text
    # The new value is what a run would use.
    who = principal(api, me)
    assert api.app_services.secrets.reveal(who, "openai").value == NEW_OPENAI_KEY

    renamed = api.patch(f"/secrets/{secret['id']}", json={"name": "work"}, headers=me.headers)
    assert renamed.json()["name"] == "work" and renamed.json()["last4"] == "abcd"
    assert api.app_services.secrets.reveal(who, "openai", "work").value == NEW_OPENAI_KEY
    put = api.put(f"/secrets/{secret['id']}", json={"name": "office"}, headers=me.headers)
    assert put.status_code == 200 and put.json()["name"] == "office"

    assert api.delete(f"/secrets/{secret['id']}", headers=me.headers).status_code == 204
    assert api.get("/secrets", headers=me.headers).json() == []
    problem(api.get(f"/secrets/{secret['id']}", headers=me.headers), 404, "not_found_error")

    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert OPENAI_KEY not in logged and NEW_OPENAI_KEY not in logged


def test_another_users_secret_is_not_found_and_left_alone(api: ApiClient) -> None:
    alice, mallory = register_and_login(api), register_and_login(api)
    secret = api.post(
        "/secrets", json={"provider": "openai", "value": OPENAI_KEY}, headers=alice.headers
    ).json()
    path = f"/secrets/{secret['id']}"

    assert api.get("/secrets", headers=mallory.headers).json() == []
    problem(api.get(path, headers=mallory.headers), 404, "not_found_error")
    problem(api.patch(path, json={"value": NEW_OPENAI_KEY}, headers=mallory.headers), 404)
    problem(api.patch(path, json={"name": "mine"}, headers=mallory.headers), 404)
    problem(api.delete(path, headers=mallory.headers), 404)
    assert api.get(path, headers=alice.headers).json() == secret


def test_bad_input_is_a_422_naming_the_field_and_never_quoting_the_value(api: ApiClient) -> None:
    me = register_and_login(api)
    not_a_key = "this is my password hunter2"
    bad_value = api.post(
        "/secrets", json={"provider": "openai", "value": not_a_key}, headers=me.headers
    )
    body = problem(bad_value, 422, "validation_error")
    assert body["errors"][0]["field"] == "value" and "sk-" in body["detail"]
    assert not_a_key not in bad_value.text and "hunter2" not in bad_value.text

    provider = problem(
        api.post("/secrets", json={"provider": "myspace", "value": "x" * 20}, headers=me.headers),
        422,
    )
    assert provider["errors"][0]["field"] == "provider"

    missing = problem(api.post("/secrets", json={"provider": "openai"}, headers=me.headers), 422)
    assert [e["field"] for e in missing["errors"]] == ["body.value"]

    too_long = "sk-" + "z" * 20_000
    schema = api.post(
        "/secrets", json={"provider": "openai", "value": too_long}, headers=me.headers
    )
    assert problem(schema, 422)["errors"][0]["field"] == "body.value"
    assert "zzzz" not in schema.text

    no_url = problem(
        api.post(
            "/secrets",
            json={"provider": "openai_compatible", "value": "ollama"},
            headers=me.headers,
        ),
        422,
    )
    assert no_url["errors"][0]["field"] == "base_url"

    assert api.get("/secrets", headers=me.headers).json() == []  # nothing was saved


def test_names_are_unique_per_provider_and_a_change_needs_something(api: ApiClient) -> None:
    me = register_and_login(api)
    first = api.post(
        "/secrets", json={"provider": "openai", "value": OPENAI_KEY}, headers=me.headers
    ).json()
    dup = api.post("/secrets", json={"provider": "openai", "value": OPENAI_KEY}, headers=me.headers)
    assert problem(dup, 422)["errors"][0]["field"] == "name"

    second = api.post(
        "/secrets",
        json={"provider": "openai", "name": "spare", "value": NEW_OPENAI_KEY},
        headers=me.headers,
    ).json()
    clash = api.patch(f"/secrets/{second['id']}", json={"name": "default"}, headers=me.headers)
    assert problem(clash, 422)["errors"][0]["field"] == "name"

    empty = problem(api.patch(f"/secrets/{first['id']}", json={}, headers=me.headers), 422)
    assert empty["code"] == "validation_error"
    blank = api.patch(f"/secrets/{first['id']}", json={"value": "  "}, headers=me.headers)
    assert problem(blank, 422)["errors"][0]["field"] == "value"
    names = sorted(s["name"] for s in api.get("/secrets", headers=me.headers).json())
    assert names == ["default", "spare"]


def test_an_openai_compatible_secret_keeps_its_base_url(api: ApiClient) -> None:
    me = register_and_login(api)
    created = api.post(
        "/secrets",
        json={
            "provider": "openai_compatible",
            "name": "ollama",
            "value": "ollama",
            "base_url": "http://localhost:11434/v1/",
        },
        headers=me.headers,
    ).json()
    assert created["base_url"] == "http://localhost:11434/v1"
    assert created["last4"] == "" and created["hint"] == "••••"  # too short to show any of it
    moved = api.patch(
        f"/secrets/{created['id']}",
        json={"base_url": "https://llm.example.com/v1"},
        headers=me.headers,
    ).json()
    assert moved["base_url"] == "https://llm.example.com/v1"
