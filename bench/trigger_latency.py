"""Time from triggering a run to the first log line of its first stage, as a live viewer sees it.

Run: .venv/bin/python bench/trigger_latency.py [--runs 50]
Starts a fresh platform with two workers, triggers runs one after another and
listens on Redis for each run's first line from a stage. Prints p50 and p99.
Each run is of the same commit, so it takes the first run's plan; with
--new-commits a commit is pushed before each run, which is then planned.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import commit_files, make_repo, percentile  # noqa: E402
from bench._platform import platform  # noqa: E402

PIPELINE = '''import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();
pipeline.stage("one", () => { console.log("first line"); });
pipeline.stage("two", () => { console.log("two"); });
pipeline.stage("three", () => { console.log("three"); });
export default pipeline;
'''


def first_stage_line(pubsub, run_id: int, deadline: float) -> float | None:
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if not message:
            continue
        if not message["channel"].decode().endswith(f":{run_id}:log"):
            continue
        for line in json.loads(message["data"])["lines"]:
            if line["stage_id"] is not None and line["stream"] != "system":
                return time.perf_counter()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--new-commits", action="store_true", help="commit a change before each run")
    args = parser.parse_args()
    from app.extensions import db
    from app.models import Run
    from app.projects import add_project
    from app.queue import redis_connection
    from app.runs.events import make_event
    from app.runs.service import create_run

    with platform(workers=2) as (app, scratch):
        repo = make_repo(scratch / "repo", {"deno-pipeline.ts": PIPELINE})
        project = add_project("latency", str(repo))
        pubsub = redis_connection().pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe("deno-ci:run:*:log")
        latencies = []
        for index in range(args.runs + 3):
            if args.new_commits:
                commit_files(repo, {"change.txt": f"change {index}\n"})
            started = time.perf_counter()
            run = create_run(project, trigger="api", event=make_event("push", branch="main"))
            seen = first_stage_line(pubsub, run.id, time.monotonic() + 60)
            if seen is None:
                print(f"run {run.id}: no stage line within 60 s", file=sys.stderr)
                continue
            if index >= 3:  # the first runs fill the mirror and the caches
                latencies.append(seen - started)
            while db.session.get(Run, run.id, populate_existing=True).status in ("queued", "running"):
                db.session.commit()
                time.sleep(0.05)
    milliseconds = [value * 1000 for value in latencies]
    kind = "new commits" if args.new_commits else "one commit"
    print(f"trigger to first stage log line over {len(milliseconds)} runs of {kind}: "
          f"p50 {percentile(milliseconds, 0.5):.0f} ms, p99 {percentile(milliseconds, 0.99):.0f} ms "
          f"(targets: p50 at most 150 ms, p99 at most 400 ms)")


if __name__ == "__main__":
    main()
