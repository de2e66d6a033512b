"""Server render time of the web pages with 10,000 runs in the database.

Fills one project with `--runs` finished runs of three stages each, the worst case
for a project's history and metrics because every run is that project's. Adds a
running run with 2,000 log lines, signs in as an administrator, and requests each
page `--repeat` times through the WSGI app in this process, one request at a time.
The time is what the server spends on a request (routing, queries, templates),
without a network hop. The target is p95 at most 100 ms. Prints figures, asserts nothing.

    python -m bench.page_render [--runs 10000] [--repeat 40]
"""

import argparse
import json
import time
from datetime import timedelta

from bench._common import percentile
from bench._platform import platform

STAGES = ("Lint", "Test", "Deploy")


def _fill(runs: int) -> tuple[int, int]:
    """Insert `runs` finished runs and one running run; return (admin id, running run id)."""
    from app.extensions import db
    from app.models import Project, User
    from app.models._columns import utcnow

    project = Project(name="web", clone_url="/srv/git/web")
    admin = User(username="bench-admin", is_admin=True)
    db.session.add_all([project, admin])
    db.session.commit()
    now = utcnow()
    statuses = ("success", "failed", "success", "cancelled", "success")
    connection = db.engine.raw_connection()
    with connection.cursor() as cursor:
        with cursor.copy("COPY runs (project_id, number, trigger, event, branch, author, status, event_data, log_seq, "
                         "queued_at, started_at, finished_at) FROM STDIN") as copy:
            for index in range(runs):
                queued = now - timedelta(minutes=(runs - index) * 4)
                copy.write_row((project.id, index + 1, "webhook", "push", ("main", "dev", "feature/x")[index % 3],
                                f"author-{index % 25}", statuses[index % 5], "{}", 0, queued,
                                queued + timedelta(seconds=2), queued + timedelta(seconds=90)))
        cursor.execute("SELECT id, status, started_at FROM runs ORDER BY id")
        rows = cursor.fetchall()
        with cursor.copy("COPY stages (run_id, name, position, needs, options, deno_flags, status, attempt, "
                         "enqueued_at, started_at, finished_at) FROM STDIN") as copy:
            for run_id, status, started in rows:
                for position, name in enumerate(STAGES):
                    stage_status = status if name == "Deploy" else "success"
                    begin = started + timedelta(seconds=position * 30)
                    copy.write_row((run_id, name, position, json.dumps([STAGES[position - 1]] if position else []), "{}",
                                    "[]", stage_status, 1, begin, begin + timedelta(seconds=1), begin + timedelta(seconds=29)))
    connection.commit()
    connection.close()
    running = _running_run(project, runs + 1)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as autocommit:
        autocommit.execute(db.text("VACUUM ANALYZE"))
    return admin.id, running


def _running_run(project, number: int) -> int:
    """Add a running run whose Test stage has logged 2,000 lines."""
    from app.extensions import db
    from app.models import Run, Stage
    from app.models._columns import utcnow
    from app.runs.logs import PendingLine, store_lines

    run = Run(project_id=project.id, number=number, trigger="webhook", event="push", branch="main", author="author-1",
              status="running", event_data={}, started_at=utcnow())
    db.session.add(run)
    db.session.flush()
    # The first stage passed, the second runs and the third waits for it.
    statuses = ("success", "running", "queued")
    stages = [Stage(run_id=run.id, name=name, position=position, needs=[STAGES[position - 1]] if position else [],
                    status=statuses[position], attempt=1, started_at=utcnow() if position < 2 else None)
              for position, name in enumerate(STAGES)]
    db.session.add_all(stages)
    db.session.commit()
    now = utcnow()
    lines = [PendingLine("stdout", f"\x1b[32mok\x1b[0m test {index} ... passed ({index % 97} ms)", now)
             for index in range(2000)]
    store_lines(db.engine, run.id, stages[1].id, lines)
    return run.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="Finished runs in the database.")
    parser.add_argument("--repeat", type=int, default=40, help="Requests per page.")
    arguments = parser.parse_args()

    with platform(workers=0) as (app, _):
        started = time.perf_counter()
        admin_id, running = _fill(arguments.runs)
        print(f"inserted {arguments.runs} runs with {len(STAGES)} stages each in {time.perf_counter() - started:.1f} s")
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = str(admin_id)
            session["_fresh"] = True
        middle = arguments.runs // 2
        pages = {
            "dashboard": "/",
            "history": "/projects/web",
            "history, filtered": "/projects/web?branch=dev&status=failed",
            "history, page 50": "/projects/web?page=50",
            "run, finished": f"/runs/{middle}",
            "run, running": f"/runs/{running}",
            "run summary fragment": f"/runs/{running}/summary",
            "metrics": "/projects/web/metrics",
            "log search": "/projects/web/search?q=test+1999",
            "editor": "/projects/web/editor",
        }
        results = {}
        for label, path in pages.items():
            first = client.get(path)  # warms caches and template compilation
            timings = []
            for _ in range(arguments.repeat):
                begin = time.perf_counter()
                client.get(path)
                timings.append((time.perf_counter() - begin) * 1000)
            results[label] = round(percentile(timings, 0.95), 1)
            print(f"{label:>22}: HTTP {first.status_code}, {len(first.data) // 1024} KiB, p50 {percentile(timings, 0.5):6.1f} ms, "
                  f"p95 {percentile(timings, 0.95):6.1f} ms over {len(timings)} requests  {path}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
