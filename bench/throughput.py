"""Sustained throughput: trivial three-stage pipelines on two workers for a fixed time.

Run: .venv/bin/python bench/throughput.py [--seconds 60] [--workers 2]
Keeps the queue filled with runs and counts those that end within the window. The
workers inherit DENO_CI_WORKSPACES: set it to a tmpfs folder to measure workspaces there.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import file_system_of, make_repo  # noqa: E402
from bench._platform import platform  # noqa: E402
from bench.trigger_latency import PIPELINE  # noqa: E402

BACKLOG = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Run
    from app.projects import add_project
    from app.runs.events import make_event
    from app.runs.service import create_run

    with platform(workers=args.workers) as (app, scratch):
        project = add_project("throughput", str(make_repo(scratch / "repo", {"deno-pipeline.ts": PIPELINE})))
        create_run(project, trigger="api", event=make_event("push", branch="main"))
        workspaces = Path(app.config["WORKSPACES_DIR"])
        time.sleep(5)  # warm the mirror and cache
        start = time.perf_counter()
        baseline = db.session.scalar(select(func.count()).where(Run.finished_at.is_not(None)))
        while time.perf_counter() - start < args.seconds:
            pending = db.session.scalar(select(func.count()).select_from(Run).where(Run.finished_at.is_(None)))
            for _ in range(max(0, BACKLOG - pending)):
                create_run(project, trigger="api", event=make_event("push", branch="main"))
            db.session.commit()
            time.sleep(0.2)
        finished = db.session.scalar(select(func.count()).select_from(Run).where(Run.finished_at.is_not(None))) - baseline
        # Taken before the platform stops: its workers finish their jobs first.
        elapsed = time.perf_counter() - start
        failed = db.session.scalar(select(func.count()).select_from(Run).where(Run.status.in_(["failed", "error"])))
        stopping = time.perf_counter()
    print(f"stopping the platform took {time.perf_counter() - stopping:.1f} s")
    print(f"workspaces: {workspaces} ({file_system_of(workspaces)})")
    print(f"{finished} runs of three stages finished in {elapsed:.0f} s with {args.workers} workers: "
          f"{finished / elapsed:.2f} runs/s ({failed} failed or errored; target at least 10 runs/s)")


if __name__ == "__main__":
    main()
