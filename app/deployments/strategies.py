"""Turning a deployment spec (from a pipeline's deploy stage or the API) into the engine's list of steps.

The spec, as the SDK's plan carries it (see sdk/deploy.ts):
  strategy: {"type": "allAtOnce"}
          | {"type": "blueGreen", "previewAnalysis": [analysis...], "keepPreviousFor": seconds}
          | {"type": "canary", "steps": [{"setWeight": 20}, {"pause": {"duration": 60}}, {"pause": {}},
                                         {"analysis": {...}}]}
  approvals: {"beforeDeploy": {"role": "developer", "count": 1}, "beforePromote": {...}}
  progressDeadline: seconds a step may take (pauses add their own duration; waits for people are exempt)

Steps, each a dict with a "kind":
  weight {weight}            give the release this percent
  pause {seconds | None}     wait for a time, or until promoted when seconds is None
  analysis {check}           measure the release; a failed check rolls the deployment back
  approval {gate: "promote"} wait for the before-promote approvals
  promote                    give the release all the traffic
  keep_previous {seconds}    keep the previous release installed for a time (blue-green)
  cleanup {keep_previous}    remove releases that no longer serve
"""

from app.deployments.adapters.base import Capabilities
from app.models import Role

STRATEGIES = ("allAtOnce", "blueGreen", "canary")
ANALYSIS_TYPES = ("http", "prometheus", "webhook")
ROLES = tuple(Role)
DEFAULT_PROGRESS_DEADLINE = 600


class SpecError(ValueError):
    """A deployment spec is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def expand_steps(spec: dict, capabilities: Capabilities) -> list[dict]:
    """Return the steps of `spec`; raise SpecError listing every problem."""
    problems: list[str] = []
    strategy = spec.get("strategy") or {"type": "allAtOnce"}
    kind = strategy.get("type") if isinstance(strategy, dict) else None
    if kind not in STRATEGIES:
        raise SpecError([f"Strategy {kind!r} is unknown: use one of {', '.join(STRATEGIES)}"])
    problems += _approval_problems(spec.get("approvals"))
    if kind == "canary":
        steps = _canary_steps(strategy.get("steps"), capabilities, problems)
    elif kind == "blueGreen":
        steps = _blue_green_steps(strategy, capabilities, problems)
    else:
        steps = []
    deadline = spec.get("progressDeadline", DEFAULT_PROGRESS_DEADLINE)
    if not _is_number(deadline) or deadline <= 0:
        problems.append(f"progressDeadline must be a number of seconds above 0, got {deadline!r}")
    if problems:
        raise SpecError(problems)
    if (spec.get("approvals") or {}).get("beforePromote"):
        steps.append({"kind": "approval", "gate": "promote"})
    steps.append({"kind": "promote"})
    if kind == "blueGreen":
        steps.append({"kind": "keep_previous", "seconds": strategy.get("keepPreviousFor", 0)})
    steps.append({"kind": "cleanup", "keep_previous": kind != "blueGreen"})
    return steps


def _canary_steps(raw: object, capabilities: Capabilities, problems: list[str]) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        problems.append("A canary needs 'steps': a list of setWeight, pause and analysis steps")
        return []
    if capabilities.max_live_releases < 2:
        problems.append("The target serves one release at a time, so it cannot run a canary")
    steps = []
    for number, step in enumerate(raw, 1):
        if isinstance(step, dict) and "setWeight" in step:
            weight = step["setWeight"]
            if not _is_whole(weight) or not 0 <= weight <= 100:
                problems.append(f"Canary step {number}: setWeight must be a whole percent from 0 to 100, got {weight!r}")
            elif weight % capabilities.weight_granularity:
                problems.append(f"Canary step {number}: setWeight {weight} is not a multiple of "
                                f"{capabilities.weight_granularity}, the target's granularity")
            steps.append({"kind": "weight", "weight": weight})
        elif isinstance(step, dict) and "pause" in step:
            steps.append(_pause_step(step["pause"], number, problems))
        elif isinstance(step, dict) and "analysis" in step:
            steps += [{"kind": "analysis", "check": check} for check in _checks(step["analysis"], number, problems)]
        else:
            problems.append(f"Canary step {number} must have setWeight, pause or analysis, got {step!r}")
    return steps


def _blue_green_steps(strategy: dict, capabilities: Capabilities, problems: list[str]) -> list[dict]:
    if capabilities.max_live_releases < 2:
        problems.append("The target serves one release at a time, so it cannot run blue-green")
    keep = strategy.get("keepPreviousFor", 0)
    if not _is_number(keep) or keep < 0:
        problems.append(f"keepPreviousFor must be seconds from 0, got {keep!r}")
    checks = _checks(strategy.get("previewAnalysis") or [], "preview", problems)
    if checks and not capabilities.preview_url:
        problems.append("The target has no preview address, so previewAnalysis cannot run")
    return [{"kind": "analysis", "check": {**check, "on": "preview"}} for check in checks]


def _pause_step(pause: object, number: int, problems: list[str]) -> dict:
    if pause in ({}, None, True):
        return {"kind": "pause", "seconds": None}
    duration = pause.get("duration") if isinstance(pause, dict) else None
    if not _is_number(duration) or duration < 0:
        problems.append(f"Canary step {number}: pause needs a duration in seconds from 0, or {{}} to wait "
                        f"for a promote, got {pause!r}")
    return {"kind": "pause", "seconds": duration}


def _checks(raw: object, where: object, problems: list[str]) -> list[dict]:
    checks = raw if isinstance(raw, list) else [raw]
    for check in checks:
        kind = check.get("type") if isinstance(check, dict) else None
        if kind not in ANALYSIS_TYPES:
            problems.append(f"Analysis in step {where}: type {kind!r} is unknown: use one of {', '.join(ANALYSIS_TYPES)}")
            continue
        problems += [f"Analysis in step {where}: {problem}" for problem in _check_problems(check)]
    return [check for check in checks if isinstance(check, dict)]


def _check_problems(check: dict) -> list[str]:
    problems = []
    for key in ("requests", "count", "failureLimit"):
        if key in check and (not _is_whole(check[key]) or check[key] < 0):
            problems.append(f"{key} must be a whole number from 0, got {check[key]!r}")
    if "maxErrorRate" in check and (not _is_number(check["maxErrorRate"]) or not 0 <= check["maxErrorRate"] <= 1):
        problems.append(f"maxErrorRate must be a fraction from 0 to 1, got {check['maxErrorRate']!r}")
    if check["type"] in ("prometheus", "webhook") and not str(check.get("url") or "").startswith(("http://", "https://")):
        problems.append(f"a {check['type']} check needs an http(s) 'url', got {check.get('url')!r}")
    if check["type"] == "prometheus" and not check.get("query"):
        problems.append("a prometheus check needs a 'query'")
    if check["type"] == "prometheus" and "max" not in check and "min" not in check:
        problems.append("a prometheus check needs 'max' or 'min' to compare the query's value with")
    return problems


def _approval_problems(approvals: object) -> list[str]:
    if approvals in (None, {}):
        return []
    if not isinstance(approvals, dict):
        return [f"approvals must be an object with beforeDeploy and beforePromote, got {approvals!r}"]
    problems = []
    for gate, rule in approvals.items():
        if gate not in ("beforeDeploy", "beforePromote"):
            problems.append(f"Approval gate {gate!r} is unknown: use beforeDeploy or beforePromote")
        elif not isinstance(rule, dict) or rule.get("role", "developer") not in ROLES:
            problems.append(f"Approval gate {gate!r} needs a role among {', '.join(ROLES)}, got {rule!r}")
        elif not _is_whole(rule.get("count", 1)) or rule.get("count", 1) < 1:
            problems.append(f"Approval gate {gate!r} needs a count of at least 1, got {rule.get('count')!r}")
    return problems


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
