"""The key under which a plan is reused."""

import os

from app.pipelines import runner
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


def test_key_changes_with_deno_upgrade(tmp_path, monkeypatch):
    binary = tmp_path / "deno"
    binary.write_bytes(b"a Deno binary")
    monkeypatch.setattr(runner, "DENO", binary)
    event = make_event("push", branch="main", commit=COMMIT)
    before = plan_key("deno-pipeline.ts", event)

    binary.write_bytes(b"a newer Deno binary")
    os.utime(binary, ns=(binary.stat().st_atime_ns, binary.stat().st_mtime_ns + 10**9))

    assert plan_key("deno-pipeline.ts", event) != before
