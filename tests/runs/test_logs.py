import threading

from app.extensions import db
from app.models import Project, Run
from app.models._columns import utcnow
from app.runs.logs import PendingLine, read_lines, store_lines


def make_run():
    project = Project(name="logs", clone_url="/nowhere")
    db.session.add(project)
    db.session.flush()
    run = Run(project_id=project.id, number=1, trigger="cli", event="push", event_data={})
    db.session.add(run)
    db.session.commit()
    return run


def test_parallel_writers_get_unique_gap_free_numbers(db_app):
    run_id = make_run().id
    engine = db.engine

    def write(prefix):
        for batch in range(20):
            lines = [PendingLine("stdout", f"{prefix}-{batch}-{index}", utcnow()) for index in range(25)]
            store_lines(engine, run_id, None, lines)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = read_lines(db.engine, run_id, 0, 10_000)
    assert [line["seq"] for line in lines] == list(range(1, 1501))
    assert len({line["text"] for line in lines}) == 1500


def test_nul_bytes_are_stored_as_replacement(db_app):
    run = make_run()
    store_lines(db.engine, run.id, None, [PendingLine("stdout", "bin\x00ary", utcnow())])
    assert read_lines(db.engine, run.id)[0]["text"] == "bin\ufffdary"


def test_system_lines_reuse_redis_connections(db_app):
    # A worker writes platform lines and queues jobs several times per stage. Each of
    # these opened a new connection to Redis before clients shared a pool.
    from app.queue import redis_connection
    from app.runs.service import system_log

    run_id = make_run().id
    observer = redis_connection()
    before = observer.info("stats")["total_connections_received"]
    for index in range(20):
        system_log(run_id, None, f"platform line {index}")
    assert observer.info("stats")["total_connections_received"] - before <= 2
    assert [line["text"] for line in read_lines(db.engine, run_id, 0, 100)] == [f"platform line {index}" for index in range(20)]
