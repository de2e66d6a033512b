"""Gated stages: the sandbox is made at once, and the command starts only after `open_gate()`."""

import time

from jobs.executor import Exit, LogChunk, Mount, StageSpec
from tests.executor.test_held import WAIT_THEN_WORK, _events_in_background


def _gated(executor, workspace, argv: list[str], **options) -> object:
    options.setdefault("timeout", 60.0)
    return executor.start(StageSpec(argv=argv, workspace=workspace, env={}, network=False, gated=True, **options))


def _stdout(events: list) -> list[str]:
    return [event.text for event in events if isinstance(event, LogChunk) and event.stream == "stdout"]


def test_gated_stage_reads_files_added_before_gate(bubblewrap, workspace, tmp_path):
    mounted = tmp_path / "deno-dir"
    mounted.mkdir()
    execution = _gated(bubblewrap, workspace, ["sh", "-c", f"cat notes.txt {mounted}/cached.txt"],
                       mounts=(Mount(mounted, writable=True),))
    events = _events_in_background(execution)
    time.sleep(0.5)
    before = [events.get_nowait() for _ in range(events.qsize())]
    assert not any(isinstance(event, (LogChunk, Exit)) for event in before), before
    # Filled while the sandbox waits at its gate, as a local run copies the directory and the cache.
    (workspace / "notes.txt").write_text("from the workspace\n")
    (mounted / "cached.txt").write_text("from the cache\n")
    execution.open_gate()
    after = []
    while not after or not isinstance(after[-1], Exit):
        after.append(events.get(timeout=30))
    assert _stdout(after) == ["from the workspace", "from the cache"]
    assert after[-1] == Exit(0, "exited")


def test_gated_stage_cancelled_at_gate_runs_nothing(bubblewrap, workspace):
    execution = _gated(bubblewrap, workspace, ["sh", "-c", "touch ran"])
    time.sleep(0.3)
    execution.cancel()
    events = list(execution.events())
    assert events[-1].reason == "cancelled"
    assert not (workspace / "ran").exists()


def test_gated_and_held_stage_waits_for_both(bubblewrap, workspace):
    execution = _gated(bubblewrap, workspace, ["sh", "-c", WAIT_THEN_WORK], held=True)
    events = _events_in_background(execution)
    execution.open_gate()
    time.sleep(0.5)
    assert not any(isinstance(event, (LogChunk, Exit)) for event in [events.get_nowait() for _ in range(events.qsize())])
    execution.release()
    after = []
    while not after or not isinstance(after[-1], Exit):
        after.append(events.get(timeout=30))
    assert _stdout(after) == ["work after start"]


def test_open_gate_without_gate_changes_nothing(any_executor, workspace):
    execution = any_executor.start(StageSpec(argv=["sh", "-c", "echo plain"], workspace=workspace, env={},
                                             network=False))
    execution.open_gate()
    events = list(execution.events())
    assert _stdout(events) == ["plain"]
    assert events[-1] == Exit(0, "exited")
