from app.status import RunStatus, StageStatus
from app.pipelines.graph import effective_needs, next_moves, run_outcome


def stage(name, needs=(), selected=True):
    return {"name": name, "needs": list(needs), "selected": selected}


def test_unselected_stage_passes_its_needs_on():
    stages = [stage("build"), stage("lint", ["build"], selected=False), stage("test", ["lint"])]
    assert effective_needs(stages) == {"build": [], "test": ["build"]}


def test_failed_need_skips_dependents_only():
    needs = {"build": [], "test": ["build"], "docs": []}
    statuses = {"build": StageStatus.FAILED, "test": StageStatus.QUEUED, "docs": StageStatus.QUEUED}
    ready, skip = next_moves(needs, statuses)
    assert ready == ["docs"]
    assert skip == ["test"]


def test_allowed_failure_lets_dependents_start():
    needs = {"lint": [], "test": ["lint"]}
    ready, skip = next_moves(needs, {"lint": StageStatus.ALLOWED_FAILURE, "test": StageStatus.QUEUED})
    assert ready == ["test"]
    assert skip == []


def test_parallel_stages_are_ready_together():
    needs = {"build": [], "lint": ["build"], "test": ["build"], "deploy": ["lint", "test"]}
    statuses = {"build": StageStatus.SUCCESS, "lint": StageStatus.QUEUED, "test": StageStatus.QUEUED, "deploy": StageStatus.QUEUED}
    ready, _ = next_moves(needs, statuses)
    assert ready == ["lint", "test"]


def test_run_outcome_table():
    assert run_outcome([StageStatus.SUCCESS, StageStatus.ALLOWED_FAILURE]) == RunStatus.SUCCESS
    assert run_outcome([StageStatus.SUCCESS, StageStatus.FAILED, StageStatus.SKIPPED]) == RunStatus.FAILED
    assert run_outcome([StageStatus.ERROR, StageStatus.SKIPPED]) == RunStatus.ERROR
    assert run_outcome([StageStatus.CANCELLED]) == RunStatus.CANCELLED
    assert run_outcome([]) == RunStatus.SKIPPED
