"""Log search: p95 of a project's substring search over 5 million stored log lines.

Run: .venv/bin/python bench/log_search.py [--lines 5000000] [--queries 200]
Starts an embedded PostgreSQL in a temporary folder, migrates it, fills `log_lines`
with generated lines through COPY (index dropped during the load and rebuilt as
migration 0030 defines it, as a restore would), then times `app.runs.search.search_logs`
for terms that match a handful of lines, a few thousand, and hundreds of thousands.
"""

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, percentile  # noqa: E402

RUNS = 2000
STAGES = ("install", "lint", "test", "build", "deploy")
WORDS = ("compiling", "downloading", "checking", "running", "test", "module", "package", "bundle", "cache", "ok",
         "passed", "file", "src", "dependency", "resolved", "emitted", "asset", "chunk", "warning", "info")
RARE_EVERY = 50_000  # one line in this many carries a unique request id
MEDIUM_EVERY = 2_000  # one line in this many carries "connection refused"


def generated_lines(count: int, runs: list[tuple[int, list[int]]], seed: int = 7):
    """Yield (run_id, stage_id, seq, stream, text) rows spread evenly over `runs`."""
    generator = random.Random(seed)
    per_run = count // len(runs) + 1
    produced = 0
    for run_id, stage_ids in runs:
        for seq in range(1, per_run + 1):
            if produced == count:
                return
            words = " ".join(generator.choice(WORDS) for _ in range(generator.randint(4, 10)))
            if produced % RARE_EVERY == 0:
                words += f" request-id=req{produced:09d}x"
            if produced % MEDIUM_EVERY == 1:
                words += " error: connection refused by registry"
            stage_id = stage_ids[seq * len(stage_ids) // (per_run + 1)]
            stream = "stderr" if produced % 17 == 0 else "stdout"
            yield run_id, stage_id, seq, stream, f"[{seq:06d}] {words}"
            produced += 1


def load(lines: int) -> tuple[int, int]:
    """Create a project with RUNS runs and their stages, COPY `lines` log lines; return (project id, seconds)."""
    from app.extensions import db
    from app.models import Project, Run, Stage

    project = Project(name="bench", clone_url="/nonexistent")
    db.session.add(project)
    db.session.flush()
    runs = []
    for number in range(1, RUNS + 1):
        run = Run(project_id=project.id, number=number, trigger="cli", event="push", branch="main", status="success")
        db.session.add(run)
        db.session.flush()
        stages = [Stage(run_id=run.id, name=name, position=index, status="success") for index, name in enumerate(STAGES)]
        db.session.add_all(stages)
        db.session.flush()
        runs.append((run.id, [stage.id for stage in stages]))
    db.session.commit()

    started = time.perf_counter()
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_log_lines_text_trgm")
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy("COPY log_lines (run_id, stage_id, seq, time, stream, text) FROM STDIN") as copy:
            now = datetime.now(UTC)
            for run_id, stage_id, seq, stream, text in generated_lines(lines, runs):
                copy.write_row((run_id, stage_id, seq, now, stream, text))
    with db.engine.begin() as connection:
        connection.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        # The same index as migration 0030.
        connection.exec_driver_sql("CREATE INDEX ix_log_lines_text_trgm ON log_lines USING gin (text gin_trgm_ops)")
        connection.exec_driver_sql("ANALYZE")
    return project.id, time.perf_counter() - started


def time_queries(project_id: int, terms: list[str], stage: str = "", stream: str = "") -> list[float]:
    from app.extensions import db
    from app.runs.search import search_logs

    durations = []
    for term in terms:
        started = time.perf_counter()
        search_logs(project_id, term, stage=stage, stream=stream)
        durations.append(time.perf_counter() - started)
        db.session.rollback()
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--explain", action="store_true", help="print PostgreSQL's plan of a rare and a common search")
    args = parser.parse_args()

    import os

    from flask_migrate import upgrade

    from app.embedded import Services

    with tempfile.TemporaryDirectory(prefix="bench-log-search-") as scratch:
        os.environ["DENO_CI_DATA"] = scratch
        for name in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(name, None)
        services = Services(Path(scratch))
        services.start()
        services.export()
        try:
            from app.factory import create_app

            app = create_app()
            with app.app_context():
                upgrade(directory=str(ROOT / "migrations"))
                project_id, seconds = load(args.lines)
                print(f"loaded {args.lines:,} lines and built the trigram index in {seconds:.0f} s")
                report(project_id, args.lines, args.queries, args.explain)
        finally:
            services.stop_started()


def _explain(project_id: int, term: str) -> None:
    from sqlalchemy import text

    from app.extensions import db
    from app.runs import search

    query = search.SEARCH_SQL.format(conditions="r.project_id = :project_id AND l.text ILIKE :pattern")
    params = {"project_id": project_id, "pattern": f"%{term}%", "limit": 51, "offset": 0}
    for row in db.session.execute(text("EXPLAIN ANALYZE " + query), params):
        print("   ", row[0])


def report(project_id: int, lines: int, queries: int, explain: bool = False) -> None:
    generator = random.Random(11)
    rare_ids = [f"req{index:09d}x" for index in range(0, lines, RARE_EVERY)]
    cases = {
        "rare term (1 line)": [generator.choice(rare_ids) for _ in range(queries)],
        "medium term (1 line in 2,000)": ["connection refused"] * queries,
        "common term (most lines)": [generator.choice(WORDS[:8]) for _ in range(queries)],
        "missing term": [f"nomatch{index}" for index in range(queries)],
    }
    everything = []
    time_queries(project_id, cases["rare term (1 line)"][:5])  # warm the cache
    for label, terms in cases.items():
        durations = time_queries(project_id, terms)
        everything += durations
        print(f"{label:32} p50 {percentile(durations, 0.5) * 1000:7.1f} ms   p95 {percentile(durations, 0.95) * 1000:7.1f} ms")
    filtered = time_queries(project_id, ["connection refused"] * queries, stage="test", stream="stderr")
    everything += filtered
    print(f"{'medium term, stage and stream':32} p50 {percentile(filtered, 0.5) * 1000:7.1f} ms   "
          f"p95 {percentile(filtered, 0.95) * 1000:7.1f} ms")
    if explain:
        _explain(project_id, cases["rare term (1 line)"][0])
        _explain(project_id, cases["common term (most lines)"][0])
    print(f"all {len(everything)} queries: p95 {percentile(everything, 0.95) * 1000:.1f} ms (target: at most 300 ms)")


if __name__ == "__main__":
    main()
