"""The key under which a plan is reused."""

from app.pipelines.plan_reuse import plan_key
from app.runs.events import make_event

COMMIT = "a" * 40


def test_key_covers_event_and_pipeline_path():
    event = make_event("push", branch="main", commit=COMMIT)
    key = plan_key("deno-pipeline.ts", event)

    assert key == plan_key("deno-pipeline.ts", dict(reversed(list(event.items()))))
    assert key != plan_key("ci/deno-pipeline.ts", event)
    assert key != plan_key("deno-pipeline.ts", {**event, "branch": "feature"})
    assert key != plan_key("deno-pipeline.ts", {**event, "commit": "b" * 40})
    assert key != plan_key("deno-pipeline.ts", {**event, "changedFiles": ["main.ts"]})


def test_schedule_and_unresolved_events_have_no_key():
    assert plan_key("deno-pipeline.ts", make_event("schedule", branch="main", commit=COMMIT)) is None
    assert plan_key("deno-pipeline.ts", make_event("push", branch="main")) is None
