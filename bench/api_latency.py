"""API latency with 100,000 runs: 200 requests a second to the run list and run detail, from a second process.

Serves the app with gunicorn (gthread workers) on 127.0.0.1, sends requests at a
fixed rate from a separate process over loopback, and prints p50 and p99 for
each endpoint. The target is p99 at most 50 ms. Prints figures, asserts nothing.

    python -m bench.api_latency [--runs 100000] [--rate 200] [--seconds 20]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from multiprocessing import Process, Queue

from bench._common import ROOT, percentile
from bench._platform import platform


def _fill(app, runs: int) -> tuple[str, list[int]]:
    """Insert `runs` finished runs over five projects with COPY; return an admin token and some run ids."""
    from app.auth.tokens import create_token
    from app.extensions import db
    from app.models import Project, User
    from app.models._columns import utcnow

    projects = [Project(name=f"bench-{index}", clone_url=f"/srv/git/bench-{index}") for index in range(5)]
    admin = User(username="bench-admin", is_admin=True)
    db.session.add_all([*projects, admin])
    db.session.commit()
    _, token = create_token(admin, "bench", "read")
    now = utcnow()
    statuses = ("success", "failed", "cancelled", "success", "error")
    connection = db.engine.raw_connection()
    with connection.cursor() as cursor:
        with cursor.copy("COPY runs (project_id, number, trigger, event, branch, author, status, event_data, log_seq, "
                         "queued_at, started_at, finished_at) FROM STDIN") as copy:
            for index in range(runs):
                project = projects[index % 5]
                queued = now - timedelta(seconds=(runs - index) * 30)
                copy.write_row((project.id, index // 5 + 1, "webhook", "push", ("main", "dev", "feature")[index % 3],
                                f"author-{index % 40}", statuses[index % 5], "{}", 0, queued,
                                queued + timedelta(seconds=2), queued + timedelta(seconds=60)))
    connection.commit()
    connection.close()
    # A long-lived instance's tables are vacuumed by autovacuum; a fresh COPY is not until it runs.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as autocommit:
        autocommit.execute(db.text("VACUUM ANALYZE runs"))
    ids = [row[0] for row in db.session.execute(db.text("SELECT id FROM runs ORDER BY random() LIMIT 500"))]
    return token, ids


def _load(base: str, token: str, ids: list[int], rate: float, seconds: float, results: Queue) -> None:
    """Send requests at `rate` per second, alternating list and detail."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    host, port = urlsplit(base).hostname, urlsplit(base).port
    timings: dict[str, list[float]] = {"list": [], "detail": []}
    errors = []
    lock = threading.Lock()
    local = threading.local()

    def call(kind: str, path: str) -> None:
        # http.client on a kept-alive connection per thread: the load generator shares the two cores with
        # the server, and requests' per-call work would be measured as server latency.
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(host, port, timeout=30)
        started = time.perf_counter()
        local.connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = local.connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        with lock:
            if response.status == 200:
                timings[kind].append(elapsed)
            else:
                errors.append(response.status)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(32) as pool:
        start = time.perf_counter()
        for number in range(int(rate * seconds)):
            time.sleep(max(0.0, start + number / rate - time.perf_counter()))
            if number % 2:
                pool.submit(call, "detail", f"/api/v1/runs/{ids[number % len(ids)]}")
            else:
                filters = ("", "&project=bench-2", "&status=failed", "&branch=dev&project=bench-1")[number // 2 % 4]
                pool.submit(call, "list", f"/api/v1/runs?per_page=20{filters}")
    results.put((timings, errors))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="Runs in the database.")
    parser.add_argument("--rate", type=float, default=200.0, help="Requests per second, split between the two endpoints.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Length of the measured load.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    arguments = parser.parse_args()

    with platform(workers=0) as (app, _):
        started = time.perf_counter()
        token, ids = _fill(app, arguments.runs)
        print(f"inserted {arguments.runs} runs in {time.perf_counter() - started:.1f} s")
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", str(arguments.workers),
                                   "-b", f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT, env=os.environ.copy(), stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base)
            warm = Queue()
            _load(base, token, ids, 50, 2, warm)
            warm.get()
            results = Queue()
            load = Process(target=_load, args=(base, token, ids, arguments.rate, arguments.seconds, results))
            load.start()
            timings, errors = results.get()
            load.join()
        finally:
            server.terminate()
            server.wait(10)
    print(f"{arguments.rate:.0f} requests/s for {arguments.seconds:.0f} s, gunicorn gthread {arguments.workers}x8, {len(errors)} errors")
    for kind, values in timings.items():
        milliseconds = [value * 1000 for value in values]
        print(f"{kind:>6}: p50 {percentile(milliseconds, 0.5):.1f} ms, p99 {percentile(milliseconds, 0.99):.1f} ms, "
              f"max {max(milliseconds):.1f} ms over {len(milliseconds)} requests")
    print(json.dumps({kind: round(percentile([v * 1000 for v in values], 0.99), 1) for kind, values in timings.items()}))


def _wait_until_up(base: str) -> None:
    import requests

    for _ in range(100):
        try:
            requests.get(base + "/api/v1/openapi.json", timeout=10)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


if __name__ == "__main__":
    main()
