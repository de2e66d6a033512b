"""Held stages: made ahead of time, and running the command's own work only after `release()`."""

import queue
import threading
import time

from jobs.executor import START_FD, Exit, LogChunk, StageSpec

# Waits for the start byte the way the runner does, then does the stage's work.
WAIT_THEN_WORK = f'head -c 1 <&{START_FD} >/dev/null; echo "work after start"'


def _held(executor, workspace, **options) -> object:
    options.setdefault("timeout", 60.0)
    spec = StageSpec(argv=["sh", "-c", WAIT_THEN_WORK], workspace=workspace, env={}, network=False, held=True, **options)
    return executor.start(spec)


def _events_in_background(execution) -> queue.Queue:
    events: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [events.put(event) for event in execution.events()], daemon=True).start()
    return events


def test_held_stage_waits_for_release(any_executor, workspace):
    execution = _held(any_executor, workspace)
    events = _events_in_background(execution)
    time.sleep(0.5)
    before = [events.get_nowait() for _ in range(events.qsize())]
    assert not any(isinstance(event, LogChunk) and event.stream == "stdout" for event in before)
    assert not any(isinstance(event, Exit) for event in before)
    execution.release()
    after = []
    while not after or not isinstance(after[-1], Exit):
        after.append(events.get(timeout=30))
    assert [event.text for event in after if isinstance(event, LogChunk) and event.stream == "stdout"] == ["work after start"]
    assert after[-1] == Exit(0, "exited")


def test_held_stage_timeout_counts_from_release(any_executor, workspace):
    execution = _held(any_executor, workspace, timeout=0.5)
    time.sleep(1.0)
    execution.release()
    assert list(execution.events())[-1] == Exit(0, "exited")


def test_held_stage_dropped_does_no_work(any_executor, workspace):
    execution = _held(any_executor, workspace)
    time.sleep(0.3)
    execution.cancel()
    events = list(execution.events())
    assert events[-1].reason == "cancelled"
    assert "work after start" not in [event.text for event in events if isinstance(event, LogChunk)]


def test_release_without_hold_changes_nothing(any_executor, run, workspace):
    spec = StageSpec(argv=["sh", "-c", "echo plain"], workspace=workspace, env={}, network=False)
    execution = any_executor.start(spec)
    execution.release()
    events = list(execution.events())
    assert [event.text for event in events if isinstance(event, LogChunk) and event.stream == "stdout"] == ["plain"]
    assert events[-1] == Exit(0, "exited")
