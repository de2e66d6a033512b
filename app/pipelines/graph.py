"""Which stages of a plan may start, and which are skipped, given the stages' statuses.

Pure functions over the runner's plan: no I/O here, so the local runner and the
RQ workers decide the same way.
"""

from collections.abc import Mapping, Sequence

from app.status import RunStatus, StageStatus

# A stage may start once each stage it needs ended in one of these.
PASSED = frozenset({StageStatus.SUCCESS, StageStatus.ALLOWED_FAILURE})


def effective_needs(stages: Sequence[Mapping]) -> dict[str, list[str]]:
    """Map each selected stage to the selected stages it waits for.

    The runner already leaves out every stage that needs an unselected one, so this
    only drops unselected names. It also passes an unselected stage's own needs on,
    which keeps the graph whole for a plan from a runner that does not propagate.
    """
    by_name = {stage["name"]: stage for stage in stages}

    def selected_ancestors(name: str, seen: set[str]) -> list[str]:
        result: list[str] = []
        for need in by_name[name]["needs"]:
            if need in seen or need not in by_name:
                continue
            seen.add(need)
            if by_name[need].get("selected", True):
                result.append(need)
            else:
                result.extend(selected_ancestors(need, seen))
        return result

    return {
        stage["name"]: selected_ancestors(stage["name"], set())
        for stage in stages
        if stage.get("selected", True)
    }


def first_stage(plan: Mapping) -> Mapping | None:
    """Return the entry of the plan's first stage that starts at once, or None.

    Deploy stages are left out because the platform runs them itself, not always in a sandbox.
    """
    needs = effective_needs(plan["stages"])
    for entry in plan["stages"]:
        if entry["name"] in needs and not needs[entry["name"]] and not entry.get("deploy"):
            return entry
    return None


def starts_unchanged(plan: Mapping, entry: Mapping) -> bool:
    """Return whether `plan` has a stage equal to `entry` in every setting, which starts at once."""
    name = entry["name"]
    same = next((stage for stage in plan["stages"] if stage["name"] == name), None) == entry
    return same and effective_needs(plan["stages"]).get(name) == []


def ready_when_running_pass(waits_for: Sequence[str], statuses: Mapping[str, str]) -> bool:
    """Return whether a stage waiting for `waits_for` becomes ready once its running needs pass.

    At least one need must still run: a stage whose needs all passed is ready now.
    """
    need_statuses = [statuses[need] for need in waits_for]
    return StageStatus.RUNNING in need_statuses and all(
        status in PASSED or status == StageStatus.RUNNING for status in need_statuses)


def next_moves(needs: Mapping[str, Sequence[str]], statuses: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Return (stages ready to start, stages to skip) among the queued ones.

    A queued stage is ready when every stage it needs passed, and is skipped when
    any of them ended without passing (failed, error, cancelled or skipped).
    """
    ready, skip = [], []
    for name, waits_for in needs.items():
        if statuses[name] != StageStatus.QUEUED:
            continue
        need_statuses = [statuses[need] for need in waits_for]
        if any(status not in PASSED and status not in (StageStatus.QUEUED, StageStatus.RUNNING) for status in need_statuses):
            skip.append(name)
        elif all(status in PASSED for status in need_statuses):
            ready.append(name)
    return ready, skip


def run_outcome(statuses: Sequence[str]) -> RunStatus:
    """Return the status of a run whose stages all ended with `statuses`."""
    if not statuses:
        return RunStatus.SKIPPED
    if StageStatus.FAILED in statuses:
        return RunStatus.FAILED
    if StageStatus.ERROR in statuses:
        return RunStatus.ERROR
    if StageStatus.CANCELLED in statuses:
        return RunStatus.CANCELLED
    return RunStatus.SUCCESS


def stage_levels(needs: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Return each stage's level: 0 for a stage that needs nothing, else one more than its deepest need.

    Stages of one level can run side by side, so drawings put them in one column (the
    stage graph) or on separate lanes at the same time (the timeline). Needs outside
    `needs` are ignored, and a cycle (which `plan` rejects) does not loop forever.
    """
    levels: dict[str, int] = {}

    def level(name: str, visiting: frozenset[str]) -> int:
        if name in levels:
            return levels[name]
        known = [need for need in needs[name] if need in needs and need not in visiting]
        result = max((level(need, visiting | {name}) + 1 for need in known), default=0)
        levels[name] = result
        return result

    for name in needs:
        level(name, frozenset())
    return levels
