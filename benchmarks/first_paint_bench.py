"""How fast the app feels: the sign-in form on a cold and a warm server, each page settled.

Starts the one-process app (uvicorn ``jarvis.asgi:create_app``, as ``jarvis up``) on a throwaway
embedded database, then drives Debian's Chromium with Playwright:

* cold sign-in form: the first ``page.goto`` after the server reports healthy, until the
  password field is visible;
* warm sign-in form: the same in new browser contexts (p50 of ``--repeat``);
* each page after signing in: ``page.goto`` until Streamlit's status widget no longer says
  "Running" and the page's title is shown (p50 of ``--repeat``).

    .venv/bin/python benchmarks/first_paint_bench.py [--repeat 3]

Figures depend on the machine and its load; the target is 1 s for each.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._db import benchmark_database, p50  # noqa: E402
from jarvis.bootstrap import build_services  # noqa: E402
from jarvis.config import Settings  # noqa: E402
from jarvis.ui.navigation import PAGES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("JARVIS_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
EMAIL, PASSWORD = "bench.admin@example.com", "bench-password-123"
SETTLED = (
    "() => document.querySelector('[data-testid=\"stApp\"]') &&"
    " (!document.querySelector('[data-testid=\"stStatusWidget\"]') ||"
    " !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running'))"
)


def start(s: Settings, log: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ)
    env.update(
        DATABASE_URL=s.owner_url(),
        JARVIS_DATA_DIR=str(s.data_dir),
        JARVIS_MASTER_KEY=str(s.master_key),
        JARVIS_JWT_SECRET=str(s.jwt_secret),
        JARVIS_DB_APP_PASSWORD=str(s.db_app_password),
        JARVIS_ENV="test",
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
    )
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "jarvis.asgi:create_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-proxy-headers"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise SystemExit("the app exited:\n" + log.read_text(errors="replace"))
        try:
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.2)


def sign_in_form(browser: Any, url: str) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.get_by_label("Password", exact=True).wait_for(state="visible", timeout=60_000)
    elapsed = time.perf_counter() - t0
    context.close()
    return elapsed


def page_times(browser: Any, url: str, repeat: int) -> dict[str, list[float]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(url)
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Welcome,").wait_for()
    page.wait_for_function(SETTLED)
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        for spec in PAGES:
            t0 = time.perf_counter()
            page.goto(f"{url}/{spec.url_path}")
            page.wait_for_function(SETTLED)
            page.get_by_role("heading").first.wait_for()
            page.wait_for_function(SETTLED)
            times.setdefault(spec.title, []).append(time.perf_counter() - t0)
    context.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with benchmark_database() as settings:
        services = build_services(settings, background=False)
        services.accounts.register(EMAIL, PASSWORD, "Bench")
        services.shutdown()
        services.engine.dispose()
        log = Path(tempfile.mkdtemp(prefix="jarvis-first-paint-")) / "app.log"
        proc, url, started = start(settings, log)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                cold = sign_in_form(browser, url)
                warm = [sign_in_form(browser, url) for _ in range(args.repeat)]
                pages = page_times(browser, url, args.repeat)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"server start to healthy        {started:6.2f} s")
    print(f"sign-in form, cold server      {cold:6.2f} s   (target 1 s)")
    print(f"sign-in form, warm (p50 of {len(warm)})  {p50(warm):6.2f} s   (target 1 s)")
    for title, values in pages.items():
        print(f"page settled: {title:<17}{p50(values):6.2f} s   (p50 of {len(values)})")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine)")


if __name__ == "__main__":
    main()
