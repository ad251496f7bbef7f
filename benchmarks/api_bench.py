"""The HTTP API under load, measured against the real one-process server.

Starts a throwaway embedded PostgreSQL, migrates it, seeds one user with a month of usage, and
runs ``uvicorn --factory jarvis.asgi:create_app`` (the UI and the API in one process, as
``jarvis up`` does) on a free port. Then, with real HTTP clients (httpx, one per thread):

1. 20 concurrent clients for ``--seconds`` each on
   * ``GET /api/v1/health``          (no auth, no database: the floor of the stack),
   * ``GET /api/v1/auth/me``         (a cheap authenticated GET: token check + rate limit),
     with an access token and with a personal API key,
   * ``GET /api/v1/usage/current-month`` (the usage service on the user's rollups),
   printing requests/s and p50/p95 latency, and the ratio of each to the floor.
2. ``POST /api/v1/orchestrator/run`` (offline model): time from sending the request to the
   first SSE frame (``run_started``) and to the last one, sequentially, ``--runs`` times.

Run:  .venv/bin/python benchmarks/api_bench.py  [--clients 20 --seconds 10 --runs 30]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from benchmarks._db import benchmark_database, percentile  # noqa: E402
from jarvis.bootstrap import build_services  # noqa: E402
from jarvis.config import Settings  # noqa: E402
from jarvis.db.tables import AgentRun  # noqa: E402
from jarvis.identity import Principal  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password 1234"  # noqa: S105 - a throwaway database's user


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            "JARVIS_ENV": "dev",
            "DATABASE_URL": settings.owner_url(),
            "JARVIS_DATA_DIR": str(settings.data_dir),
            "JARVIS_MASTER_KEY": settings.master_key or "",
            "JARVIS_JWT_SECRET": settings.jwt_secret or "",
            "JARVIS_DB_APP_PASSWORD": settings.db_app_password or "",
            "JARVIS_DB_POOL_SIZE": "10",
            # The benchmark measures the server, not the limits (which would answer 429).
            "JARVIS_API_REQUESTS_PER_MINUTE": "1000000",
            "JARVIS_API_REQUESTS_PER_MINUTE_PER_IP": "1000000",
            "JARVIS_MESSAGES_PER_MINUTE": "100000",
            "LOG_LEVEL": "WARNING",
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "jarvis.asgi:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-proxy-headers",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("the server did not become ready within 60 s")


def seed_usage(settings: Settings, who: Principal, runs: int) -> None:
    """``runs`` finished, priced runs over the last 30 days, closed by the run recorder."""
    services = build_services(settings, background=False)
    try:
        now = datetime.now(UTC)
        with services.uow(who) as w:
            for i in range(runs):
                started = now - timedelta(minutes=i * 30 * 24 * 60 // runs + 1)
                run = w.runs.add(
                    AgentRun(
                        id=uuid.uuid4(),
                        user_id=who.user_id,
                        provider="openai",
                        model="gpt-4o-mini",
                        status="completed",
                        started_at=started,
                        finished_at=started + timedelta(seconds=3),
                        input_tokens=1000 + i % 500,
                        output_tokens=200 + i % 100,
                    )
                )
                services.run_recorder.on_run_finished(w, run)
            w.commit()
    finally:
        services.engine.dispose()


def load(
    url: str, headers: dict[str, str], clients: int, seconds: float
) -> tuple[float, list[float], int]:
    """(requests per second, latencies in ms, non-2xx answers) for ``clients`` threads."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            http.get(url)  # connect first
            start.wait()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                r = http.get(url)
                latencies[i].append((time.perf_counter() - t0) * 1000)
                if r.status_code >= 300:
                    errors[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    flat = [x for per in latencies for x in per]
    return len(flat) / elapsed, flat, sum(errors)


def first_frames(base: str, headers: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Milliseconds to the first SSE frame and to the stream's end, per run."""
    first, total = [], []
    with httpx.Client(headers=headers, timeout=60) as http:
        for i in range(runs):
            body = {"message": f"hello there, run {i}", "provider": "offline"}
            t0 = time.perf_counter()
            seen = False
            with http.stream("POST", f"{base}/orchestrator/run", json=body) as r:
                if r.status_code != 200:
                    raise SystemExit(f"orchestrator/run answered {r.status_code}: {r.read()!r}")
                for line in r.iter_lines():
                    if line.startswith("data:") and not seen:
                        first.append((time.perf_counter() - t0) * 1000)
                        seen = True
            total.append((time.perf_counter() - t0) * 1000)
    return first, total


def line(label: str, rps: float, lat: list[float], errors: int, floor: float | None) -> str:
    ratio = f"  ({rps / floor:.2f}x the floor's rate)" if floor else ""
    return (
        f"{label:<34} {rps:8,.0f} req/s   p50 {percentile(lat, 50):6.1f} ms   "
        f"p95 {percentile(lat, 95):6.1f} ms   non-2xx {errors}{ratio}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seed-runs", type=int, default=3000)
    args = ap.parse_args(argv)

    with benchmark_database() as settings:
        port = free_port()
        server = start_server(settings, port)
        try:
            base = f"http://127.0.0.1:{port}/api/v1"
            email = f"bench-{uuid.uuid4().hex[:6]}@example.com"
            r = httpx.post(
                f"{base}/auth/register",
                json={"email": email, "password": PASSWORD, "display_name": "Bench"},
                timeout=30,
            )
            r.raise_for_status()
            pair = r.json()
            who = Principal(
                user_id=uuid.UUID(pair["user"]["id"]),
                email=email,
                role=pair["user"]["role"],
                display_name="Bench",
            )
            seed_usage(settings, who, args.seed_runs)
            auth = {"Authorization": f"Bearer {pair['access_token']}"}
            print(
                f"# {args.clients} concurrent clients, {args.seconds:.0f} s each, one uvicorn "
                f"process (UI + API), {os.cpu_count()} cores; user with {args.seed_runs:,} runs"
            )
            floor, lat, errs = load(f"{base}/health", {}, args.clients, args.seconds)
            print(line("GET /health (no auth, no DB)", floor, lat, errs, None))
            for path in ("/auth/me", "/usage/current-month"):
                probe = httpx.get(f"{base}{path}", headers=auth, timeout=30)
                if probe.status_code == 404:
                    print(f"GET {path}: not served by this build")
                    continue
                rps, lat, errs = load(f"{base}{path}", auth, args.clients, args.seconds)
                print(line(f"GET {path}", rps, lat, errs, floor))
            # The same cheap GET with a personal API key (the key and its user in one read).
            made = httpx.post(f"{base}/api-keys", json={"name": "bench"}, headers=auth, timeout=30)
            made.raise_for_status()
            by_key = {"Authorization": f"Bearer {made.json()['key']}"}
            rps, lat, errs = load(f"{base}/auth/me", by_key, args.clients, args.seconds)
            print(line("GET /auth/me with an API key", rps, lat, errs, floor))
            first, total = first_frames(base, auth, args.runs)
            print(
                f"POST /orchestrator/run (offline), {args.runs} runs: first SSE frame "
                f"p50 {percentile(first, 50):.1f} ms / p95 {percentile(first, 95):.1f} ms; "
                f"whole answer p50 {percentile(total, 50):.1f} ms / p95 "
                f"{percentile(total, 95):.1f} ms"
            )
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
