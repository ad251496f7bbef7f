"""The `jarvis` command as an operator uses it: passwords from stdin, one-line errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from jarvis.config import Settings
from tests.conftest import TEST_APP_PASSWORD, TEST_JWT_SECRET, TEST_MASTER_KEY, app_environment

pytestmark = pytest.mark.slow  # every `jarvis` call is a new Python process (seconds each)


@pytest.fixture
def run_cli(
    fresh_database: Callable[[], Settings],
) -> Callable[..., subprocess.CompletedProcess[str]]:
    s = fresh_database()
    env = dict(os.environ)
    env.update(app_environment(s, LOG_LEVEL="WARNING"))

    def run(*args: str | bytes, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jarvis.cli", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    run.env = env  # type: ignore[attr-defined]
    return run


@pytest.fixture
def run_cli_bytes(run_cli) -> Callable[..., subprocess.CompletedProcess[bytes]]:  # type: ignore[no-untyped-def]
    """Like ``run_cli`` with bytes on stdin (what a shell pipe may carry)."""

    def run(args: tuple[str, ...], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        env = dict(run_cli.env, LC_ALL="C.UTF-8")
        return subprocess.run(
            [sys.executable, "-m", "jarvis.cli", *args],
            input=stdin,
            env=env,
            capture_output=True,
            timeout=120,
        )

    return run


def test_users_add_reads_the_password_from_stdin_and_list_shows_roles(run_cli) -> None:  # type: ignore[no-untyped-def]
    added = run_cli("users", "add", "Root@Example.com", "--admin", stdin="s3cret-passphrase\n")
    assert added.returncode == 0, added.stderr
    assert "Created admin Root@Example.com" in added.stdout
    assert "s3cret-passphrase" not in added.stdout + added.stderr
    second = run_cli(
        "users", "add", "bob@example.com", "--name", "Bob", stdin="another-passphrase\n"
    )
    assert second.returncode == 0, second.stderr
    listed = run_cli("users", "list")
    assert listed.returncode == 0
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert rows == [["Root@Example.com", "admin", "Root"], ["bob@example.com", "user", "Bob"]]


@pytest.fixture
def cli(
    fresh_database: Callable[[], Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[..., tuple[int, list[str]]]]:
    """``main()`` (what the console script runs) in this process, on a new database: the exit
    code and the lines written to stderr. For the answers; the subprocess tests above cover
    what only a real process shows (stdin, the console script, its exit)."""
    from jarvis.cli import main
    from jarvis.config import get_settings

    s = fresh_database()
    for var, value in app_environment(s).items():
        monkeypatch.setenv(var, value)
    get_settings.cache_clear()

    def run(args: list[str], stdin: str = "") -> tuple[int, list[str]]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(args)
        return code, capsys.readouterr().err.strip().splitlines()

    yield run
    get_settings.cache_clear()


def test_errors_are_one_clear_line_and_a_nonzero_exit(cli, capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli(["users", "add", "not-an-email"], "whatever-long\n") == (
        1,
        ["jarvis: Enter a valid email address."],
    )
    assert cli(["users", "add", "x@example.com"], "short\n") == (
        1,
        ["jarvis: Password must be at least 8 characters."],
    )
    assert cli(["users", "add", "dup@example.com"], "long-enough-1\n")[0] == 0
    code, lines = cli(["users", "add", "DUP@example.com"], "long-enough-1\n")
    assert code == 1 and len(lines) == 1 and "already exists" in lines[0]


_SDKS_LOADED = """
import sys
from jarvis.bootstrap import build_services
from jarvis.config import get_settings
services = build_services(get_settings(), background=False)
services.engine.dispose()
print(" ".join(m for m in ("openai", "anthropic", "mcp") if m in sys.modules) or "none")
"""


def test_a_command_does_not_wait_for_the_provider_sdks(run_cli) -> None:  # type: ignore[no-untyped-def]
    """The openai, anthropic and mcp SDKs took ~5 s of every command's start here (4 s of the
    7 s `jarvis users add` took). Services are built without them; a run imports its
    provider's SDK when it first needs it (and a server warms them up in the background)."""
    done = subprocess.run(
        [sys.executable, "-c", _SDKS_LOADED],
        env=run_cli.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "none"


def test_bad_arguments_are_one_clear_line_each(cli, capsys) -> None:  # type: ignore[no-untyped-def]
    """Invalid UTF-8 in argv (Python decodes it to lone surrogates), control characters,
    100 KB, negative and huge numbers: each command answers with one line, exit 1, and writes
    nothing."""
    from jarvis.cli import main

    password = "long-enough-1\n"
    assert cli(["users", "add", "root@example.com", "--admin"], password)[0] == 0
    cases: list[tuple[list[str], str, str]] = [
        (["users", "add", "r\udcffot@example.com"], password, "email address contains"),
        (["users", "add", "e@example.com", "--name", "bad\x1bname"], password, "escape"),
        (["users", "add", "x" * 100_000 + "@example.com"], password, "email address is too"),
        (["demo", "seed", "--users", "-1"], "", "--users must be 1 to 10,000"),
        (["demo", "seed", "--users", "1" + "0" * 12], "", "--users must be 1 to 10,000"),
        (["demo", "seed", "--runs", "-7"], "", "--runs must be 0 to"),
        (["demo", "seed", "--prefix", "a b"], "", "--prefix may hold"),
        (
            ["embeddings", "reembed", "--user", "root@example.com", "--model", "lexical"]
            + ["--batch-size", "-5"],
            "",
            "batch size must be between 1 and 10,000",
        ),
        (
            ["secrets", "rotate-master-key", "--new-version", str(2**40)],
            "ab" * 32 + "\n",
            "key version must be 1 to 2,147,483,647",
        ),
    ]
    for args, stdin, expected in cases:
        code, lines = cli(args, stdin)
        assert code == 1, (args[:3], lines)
        assert len(lines) == 1 and lines[0].startswith("jarvis: "), (args[:3], lines)
        assert expected in lines[0], (args[:3], lines[0])
    assert main(["users", "list"]) == 0  # nothing was written by the refused commands
    assert capsys.readouterr().out.splitlines() == ["root@example.com\tadmin\troot"]


def test_a_password_piped_as_invalid_utf8_is_refused(run_cli_bytes) -> None:  # type: ignore[no-untyped-def]
    result = run_cli_bytes(("users", "add", "p@example.com"), stdin=b"pass\xff\xfeword-long\n")
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        "jarvis: The password contains characters that are not valid text."
    )


def test_a_database_that_is_down_is_a_clear_line_not_a_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    env = dict(os.environ)
    env.pop("JARVIS_DEBUG", None)
    env.update(
        DATABASE_URL=f"postgresql://jarvis:pw@127.0.0.1:{port}/jarvis",
        JARVIS_DATA_DIR=str(tmp_path),
        JARVIS_MASTER_KEY=TEST_MASTER_KEY,
        JARVIS_JWT_SECRET=TEST_JWT_SECRET,
        JARVIS_DB_APP_PASSWORD=TEST_APP_PASSWORD,
        JARVIS_ENV="test",
    )
    result = subprocess.run(
        [sys.executable, "-m", "jarvis.cli", "users", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "jarvis: The database is unavailable right now. Try again in a moment."
    assert all(line.startswith("jarvis: ") for line in lines)
    assert str(port) not in result.stderr


def test_db_upgrade_is_idempotent(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "Database migrated" in result.stdout


def test_up_serves_the_app_and_sigterm_stops_it_cleanly(fresh_database) -> None:  # type: ignore[no-untyped-def]
    import signal
    import socket
    import time
    import urllib.request

    import psutil

    s = fresh_database()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ)
    env.update(app_environment(s))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jarvis.cli", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the app never became healthy"
            time.sleep(0.3)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "streamlit runs as a child of `jarvis up`"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running: {alive}"
        assert f"http://127.0.0.1:{port}" in (proc.stdout.read() if proc.stdout else "")
    finally:
        for p in [*children, psutil.Process(proc.pid)] if proc.poll() is None else children:
            if p.is_running():
                p.kill()
