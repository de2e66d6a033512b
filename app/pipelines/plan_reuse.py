"""The key under which a plan may be reused by a later run of the same commit, event and pipeline file.

The planner imports the pipeline with no permissions: it reads only the files of the
commit and the event, and cannot read the environment or the network. With the same
SDK and Deno, the same commit and event give the same plan, so a re-run or a second
trigger of a commit takes the earlier plan instead of starting a sandboxed Deno
process to plan again. The type check needs no
repeating either: a plan is kept only once its check passed.

The one thing the planner can read that changes is the clock. Scheduled runs, whose
pipelines may pick stages by the day of the week, are therefore always planned
again; other pipelines should not choose their stages by date or at random.
"""

import hashlib
import json

from app.pipelines.runner import toolchain_id

# Event kinds whose runs are always planned again (see the module's docstring).
ALWAYS_PLANNED = frozenset({"schedule"})


def plan_key(pipeline_path: str, event: dict) -> str | None:
    """Return the reuse key of a plan of `pipeline_path` for `event`, or None when such a plan is not to be reused.

    `event` must be complete: its commit is part of the key, so a new commit never
    matches an older plan.
    """
    if not event.get("commit") or event.get("kind") in ALWAYS_PLANNED:
        return None
    document = {"toolchain": toolchain_id(), "pipeline": pipeline_path, "event": event}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
