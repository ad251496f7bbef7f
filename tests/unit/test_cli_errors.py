"""`jarvis` errors: one line on stderr and a non-zero exit, whatever was raised; the traceback
only with JARVIS_DEBUG=1."""

from __future__ import annotations

import argparse
import io
import logging

import pytest

from jarvis.cli import DEBUG_ENV, _OneLineLogFormatter, run
from jarvis.errors import DatabaseUnavailableError, ValidationError

ARGS = argparse.Namespace()


def raising(exc: BaseException):  # type: ignore[no-untyped-def]
    def handler(_args: argparse.Namespace) -> int:
        raise exc

    return handler


@pytest.fixture(autouse=True)
def no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)


def test_a_jarvis_error_is_its_message_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(raising(ValidationError("Enter a valid email address.")), ARGS) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "jarvis: Enter a valid email address.\n"


def test_any_other_error_is_one_generic_line_naming_its_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    boom = RuntimeError("could not reach postgresql://jarvis:hunter2@db.internal:5432/jarvis")
    assert run(raising(boom), ARGS) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("jarvis: unexpected error (RuntimeError)")
    assert f"{DEBUG_ENV}=1" in err
    # The message of a foreign error may name hosts, paths or credentials: never shown.
    assert "hunter2" not in err and "db.internal" not in err
    assert "Traceback" not in err


def test_debug_adds_the_traceback_then_the_same_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEBUG_ENV, "1")
    assert run(raising(KeyError("missing")), ARGS) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in err
    assert err.splitlines()[-1].startswith("jarvis: unexpected error (KeyError)")
    assert run(raising(DatabaseUnavailableError()), ARGS) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.splitlines()[-1] == f"jarvis: {DatabaseUnavailableError()}"


def test_success_and_ctrl_c_keep_their_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(lambda _args: 0, ARGS) == 0
    assert run(lambda _args: 3, ARGS) == 3
    assert run(raising(KeyboardInterrupt()), ARGS) == 130
    assert capsys.readouterr().err == ""


def test_warnings_logged_by_services_are_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_OneLineLogFormatter())
    log = logging.getLogger("jarvis.test_cli_errors")
    log.addHandler(handler)
    log.propagate = False
    try:
        for debug in ("", "1"):
            monkeypatch.setenv(DEBUG_ENV, debug)
            try:
                raise ConnectionError("refused by 10.0.0.7")
            except ConnectionError:
                log.warning("could not recover stale runs at start-up", exc_info=True)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    quiet, _, loud = stream.getvalue().partition("\n")
    assert quiet == "jarvis: warning: could not recover stale runs at start-up"
    assert loud.startswith("jarvis: warning: could not recover stale runs at start-up\nTraceback")
    assert "ConnectionError: refused by 10.0.0.7" in loud
