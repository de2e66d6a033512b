import threading
from datetime import UTC, datetime, timedelta

from app.extensions import db
from app.models import Project, Run, Schedule
from app.scheduler import run_due_schedules


def make_schedule(cron="*/5 * * * *", created=datetime(2026, 1, 1, tzinfo=UTC)):
    project = Project(name="nightly", clone_url="/nowhere")
    db.session.add(project)
    db.session.flush()
    schedule = Schedule(project_id=project.id, cron=cron, branch="main", created_at=created)
    db.session.add(schedule)
    db.session.commit()
    return schedule


def runs():
    db.session.expire_all()
    return db.session.scalars(db.select(Run)).all()


def test_slot_starts_one_schedule_run(db_app):
    make_schedule()
    now = datetime(2026, 1, 1, 0, 7, tzinfo=UTC)
    assert run_due_schedules(now) == 1
    assert run_due_schedules(now) == 0
    started = runs()
    assert [(run.event, run.branch, run.trigger) for run in started] == [("schedule", "main", "schedule")]


def test_missed_slots_start_one_run(db_app):
    make_schedule()
    assert run_due_schedules(datetime(2026, 1, 1, 10, 1, tzinfo=UTC)) == 1
    assert len(runs()) == 1


def test_next_slot_starts_another_run(db_app):
    make_schedule()
    run_due_schedules(datetime(2026, 1, 1, 0, 7, tzinfo=UTC))
    run_due_schedules(datetime(2026, 1, 1, 0, 11, tzinfo=UTC))
    assert len(runs()) == 2


def test_new_schedule_waits_for_its_first_slot(db_app):
    make_schedule(created=datetime(2026, 1, 1, 0, 6, tzinfo=UTC))
    assert run_due_schedules(datetime(2026, 1, 1, 0, 7, tzinfo=UTC)) == 0


def test_concurrent_schedulers_start_slot_once(db_app):
    make_schedule()
    now = datetime(2026, 1, 1, 0, 7, tzinfo=UTC)
    app = db_app
    counts = []

    def tick():
        with app.app_context():
            counts.append(run_due_schedules(now))
            db.session.remove()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 1
    assert len(runs()) == 1
