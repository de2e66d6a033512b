import pytest
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Project, Run, RunStatus, Stage, StageStatus


@pytest.fixture
def run(db_app):
    project = Project(name="web", clone_url="/nowhere")
    db.session.add(project)
    db.session.flush()
    created = Run(project_id=project.id, number=1, trigger="cli", event="push", event_data={})
    db.session.add(created)
    db.session.commit()
    return created


def set_status(row, status):
    row.status = status
    db.session.commit()


def test_run_moves_forward(run):
    set_status(run, RunStatus.RUNNING)
    set_status(run, RunStatus.SUCCESS)
    assert db.session.get(Run, run.id).status == "success"


@pytest.mark.parametrize("terminal", [RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.ERROR])
def test_database_rejects_leaving_terminal_status(run, terminal):
    set_status(run, terminal)
    with pytest.raises(IntegrityError, match="invalid status transition"):
        set_status(run, RunStatus.RUNNING)
    db.session.rollback()


def test_database_rejects_unknown_status(run):
    with pytest.raises(IntegrityError, match="runs_status_valid"):
        set_status(run, "exploded")
    db.session.rollback()


def test_stage_requeue_needs_new_attempt(run):
    stage = Stage(run_id=run.id, name="test", position=0, needs=[], options={})
    db.session.add(stage)
    db.session.commit()
    stage.status, stage.attempt = StageStatus.RUNNING, 1
    db.session.commit()
    with pytest.raises(IntegrityError, match="invalid status transition"):
        set_status(stage, StageStatus.QUEUED)
    db.session.rollback()
    stage = db.session.get(Stage, stage.id)
    stage.status, stage.attempt = StageStatus.QUEUED, 2
    db.session.commit()
    assert db.session.get(Stage, stage.id).status == "queued"


def test_allowed_failure_attempt_is_retried(run):
    from app.runs import service

    stage = Stage(run_id=run.id, name="flaky", position=0, needs=[], options={"retries": 1, "allowFailure": True})
    db.session.add(stage)
    db.session.commit()
    set_status(run, RunStatus.RUNNING)
    stage.status, stage.attempt = StageStatus.RUNNING, 1
    db.session.commit()
    service.finish_stage(stage.id, StageStatus.ALLOWED_FAILURE, 1, "the command failed")
    db.session.expire_all()
    retried = db.session.get(Stage, stage.id)
    assert retried.status == "queued"
    assert retried.attempt == 2
