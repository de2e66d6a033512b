"""Reuse of a plan by a later run of the same commit, event and pipeline file.

The planner imports the pipeline with no permissions: it reads only the files of the
commit and the event, and cannot read the environment or the network. With the same
SDK and Deno, the same commit and event give the same plan, so a re-run or a second
trigger of a commit takes the earlier plan instead of starting a sandboxed Deno
process to plan again. The type check needs no repeating either, because a plan is
kept only once its check passed.

The one thing the planner can read that changes is the clock. Scheduled runs, whose
pipelines may pick stages by the day of the week, are therefore always planned again.
Other pipelines should not choose their stages by date or at random.

`deno-ci run` takes the previous plan of a directory the same way when the directory
is exactly its HEAD commit's tree and its stages run in a sandbox. Its planner is not
sandboxed and could import an ignored file or one outside the directory, but the
sandboxed stages run on a copy that has neither, so such a pipeline fails in its stages
whatever plan it was given. Unsandboxed stages see the whole machine, so the
unsandboxed executor always plans again.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from app.pipelines.runner import toolchain_id

if TYPE_CHECKING:
    from app.models import Run

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


def earlier_plan(run: Run, key: str) -> tuple[dict, int] | None:
    """Return the plan and number of the project's latest other run whose plan has reuse key `key`, or None."""
    # Imported here: `deno-ci run` imports this module and has no database.
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Run

    row = db.session.execute(
        select(Run.plan, Run.number).where(Run.project_id == run.project_id, Run.plan_key == key, Run.id != run.id,
                                           Run.plan.is_not(None))
        .order_by(Run.id.desc()).limit(1)
    ).first()
    return (row.plan, row.number) if row is not None else None
