"""Behaviour that the bubblewrap and the unsandboxed executors share, with real processes."""

import os
import threading
import time

import pytest

from jobs.executor import ControlEvent, ExecutorError, Exit, LogChunk, StageSpec
from jobs.executor.base import MAX_LINE_BYTES


def test_stdout_stderr_and_exit_code(any_executor, run):
    result = run(any_executor, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.stdout == ["out"]
    assert result.lines("stderr") == ["err"]
    assert result.exit == Exit(3, "exited")


def test_exit_is_the_last_event(any_executor, run):
    result = run(any_executor, ["true"])
    assert isinstance(result.exit, Exit)
    assert sum(isinstance(event, Exit) for event in result.events) == 1


def test_control_events_come_from_fd_3(any_executor, run):
    script = """echo '{"type":"artifact","path":"a.txt"}' >&3; echo '{"type":"fake"}'; echo 'not json' >&3"""
    result = run(any_executor, ["sh", "-c", script])
    assert result.controls == [{"type": "artifact", "path": "a.txt"}]
    assert result.stdout == ['{"type":"fake"}']
    warnings = result.lines("system")
    assert any("not valid JSON" in line for line in warnings)
    assert result.exit.code == 0


def test_stdout_and_stderr_never_block_each_other(any_executor, run, python_argv):
    # 1 MiB to stderr before the first stdout byte: a reader that waits on stdout
    # alone would deadlock once the stderr pipe buffer fills.
    code = "import sys; sys.stderr.write('e' * 100 + '\\n') or None\nfor _ in range(10000): sys.stderr.write('e' * 100 + '\\n')\nprint('done')"
    result = run(any_executor, python_argv(code), timeout=30)
    assert result.exit == Exit(0, "exited")
    assert result.stdout == ["done"]
    assert len(result.lines("stderr")) == 10001


def test_binary_output_is_replaced_not_fatal(any_executor, run):
    result = run(any_executor, ["sh", "-c", "head -c 100000 /dev/urandom; echo; echo after"])
    assert result.exit == Exit(0, "exited")
    assert result.stdout[-1] == "after"


def test_one_megabyte_line_is_split(any_executor, run):
    result = run(any_executor, ["sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' 'a'"])
    assert result.exit.code == 0
    assert [len(line) for line in result.stdout] == [MAX_LINE_BYTES] * 16


def test_100_megabytes_of_output_hit_the_limit(any_executor, run):
    started = time.monotonic()
    result = run(any_executor, ["sh", "-c", "head -c 104857600 /dev/zero | tr '\\0' 'z' | fold -w 1000; echo still-running >&3"], max_output_bytes=1_000_000)
    assert result.exit == Exit(0, "exited")
    notices = [line for line in result.lines("system") if "Output limit" in line]
    assert len(notices) == 1
    assert len(result.stdout) == 1000  # 1,000,000 bytes are 999 full lines of 1001 bytes and a cut one
    assert time.monotonic() - started < 30


def test_output_limit_does_not_end_the_process(any_executor, run):
    result = run(any_executor, ["sh", "-c", "seq 1 100000; echo '{\"alive\":true}' >&3"], max_output_bytes=1000)
    assert result.controls == [{"alive": True}]
    assert result.exit == Exit(0, "exited")


def test_environment_is_exactly_the_spec_plus_basics(any_executor, run, monkeypatch):
    monkeypatch.setenv("DENO_CI_TEST_HOST_SECRET", "must-not-leak")
    result = run(any_executor, ["env"], env={"DENO_CI_STAGE": "test", "FOO": "bar"})
    names = {line.split("=", 1)[0] for line in result.stdout}
    assert "DENO_CI_TEST_HOST_SECRET" not in names
    assert "FOO=bar" in result.stdout
    assert names <= {"DENO_CI_STAGE", "FOO", "PATH", "HOME", "TMPDIR", "PWD"}


def test_spec_path_and_home_win(any_executor, run):
    result = run(any_executor, ["sh", "-c", "echo $HOME; echo $PATH"], env={"HOME": "/elsewhere", "PATH": "/usr/bin:/bin"})
    assert result.stdout == ["/elsewhere", "/usr/bin:/bin"]


def test_workspace_is_the_working_directory_and_writable(any_executor, run, workspace):
    result = run(any_executor, ["sh", "-c", "pwd; echo written > result.txt"])
    assert result.stdout == [str(workspace)]
    assert (workspace / "result.txt").read_text() == "written\n"


def test_timeout_kills_the_stage(any_executor, run):
    started = time.monotonic()
    result = run(any_executor, ["sh", "-c", "echo begun; sleep 60"], timeout=0.5)
    assert result.stdout == ["begun"]
    assert result.exit.reason == "timeout"
    assert result.exit.code is None
    assert "0.5 s" in result.exit.message
    assert time.monotonic() - started < 3


def test_cancel_before_output_ends_the_stage(any_executor, workspace):
    execution = any_executor.start(StageSpec(argv=["sleep", "60"], workspace=workspace, env={}, network=False))
    execution.cancel()
    execution.cancel()
    events = list(execution.events())
    assert events[-1].reason == "cancelled"


def test_cancel_kills_whole_tree_quickly(any_executor, workspace, python_argv, processes_with_marker):
    marker = f"deno-ci-test-marker-{time.monotonic_ns()}"
    # One child ignores SIGTERM, one calls setsid, and one double-forks out of both.
    code = (
        "import os, signal, subprocess, sys, time\n"
        "py, marker = sys.executable, sys.argv[1]\n"
        "subprocess.Popen([py, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)', marker])\n"
        "subprocess.Popen([py, '-c', 'import time; time.sleep(300)', marker], start_new_session=True)\n"
        "subprocess.Popen([py, '-c', 'import os, subprocess, sys, time; os.setsid(); subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(300)\", sys.argv[1]], start_new_session=True); os._exit(0)', marker])\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "time.sleep(1)\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    execution = any_executor.start(StageSpec(argv=python_argv(code, marker), workspace=workspace, env={}, network=False))
    events = execution.events()
    for event in events:
        if isinstance(event, LogChunk) and event.text == "ready":
            break
    assert len(processes_with_marker(marker)) >= 4

    cancelled_at = time.monotonic()
    threading.Thread(target=execution.cancel).start()
    rest = list(events)
    elapsed = time.monotonic() - cancelled_at

    assert rest[-1].reason == "cancelled"
    assert elapsed < 2.0
    deadline = time.monotonic() + 1.0
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_marker(marker) == []


def test_leftover_background_process_is_killed_at_exit(any_executor, run, python_argv, processes_with_marker):
    marker = f"deno-ci-test-leftover-{time.monotonic_ns()}"
    code = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', sys.argv[1]], start_new_session=True); print('left')"
    result = run(any_executor, python_argv(code, marker))
    assert result.exit == Exit(0, "exited")
    time.sleep(0.1)
    assert processes_with_marker(marker) == []


def test_fork_loop_is_capped_by_max_processes(any_executor, run, python_argv):
    # Bounded on purpose: at most 2,000 sleeping children, all killed when the stage ends.
    code = (
        "import os, time\n"
        "count = 0\n"
        "for _ in range(2000):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    count += 1\n"
        "print(count)\n"
    )
    result = run(any_executor, python_argv(code), max_processes=64)
    if any("not enforced" in line for line in result.lines("system")):
        pytest.skip("no writable pids cgroup on this machine")
    assert result.exit == Exit(0, "exited")
    started = int(result.stdout[-1])
    assert 50 <= started < 64
    # The loop stops at the first failed fork, which the log explains.
    assert ("The stage reached its limit of 64 processes and threads, so 1 attempt to start one failed. Start fewer "
            "processes, or raise DENO_CI_STAGE_MAX_PROCESSES.") in result.lines("system")


def test_missing_command_fails_with_exit_code(any_executor, run):
    result = run(any_executor, ["/nonexistent/command"])
    assert result.exit.code not in (0, None)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"argv": []}, "argv is empty"),
        ({"workspace": "relative/path"}, "not an absolute path"),
        ({"workspace": "/nonexistent/deno-ci-workspace"}, "does not exist"),
        ({"workspace": "/"}, "system folder"),
        ({"timeout": 0}, "timeout is 0"),
        ({"max_processes": 0}, "max_processes is 0"),
    ],
)
def test_invalid_spec_is_rejected(any_executor, workspace, change, message):
    fields = {"argv": ["true"], "workspace": workspace, "env": {}, **change}
    fields["workspace"] = type(workspace)(fields["workspace"])
    with pytest.raises(ExecutorError, match=message):
        any_executor.start(StageSpec(**fields))


def test_abandoned_events_generator_cancels(any_executor, workspace, python_argv, processes_with_marker):
    marker = f"deno-ci-test-abandon-{time.monotonic_ns()}"
    code = "import time\nprint('first', flush=True)\ntime.sleep(300)"
    execution = any_executor.start(StageSpec(argv=python_argv(code, marker), workspace=workspace, env={}, network=False))
    events = execution.events()
    for event in events:
        if isinstance(event, LogChunk) and event.text == "first":
            break
    assert processes_with_marker(marker) != []
    events.close()
    deadline = time.monotonic() + 2.0
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_marker(marker) == []


def test_control_event_types(any_executor, run):
    result = run(any_executor, ["sh", "-c", "echo '{\"n\": 1}' >&3"])
    assert [type(event) for event in result.events if not isinstance(event, LogChunk)] == [ControlEvent, Exit]


def test_stale_stage_cgroups_are_removed():
    from jobs.executor.cgroups import remove_stale_cgroups, stage_cgroup_parent

    parent = stage_cgroup_parent()
    if parent is None:
        pytest.skip("no writable pids cgroup on this machine")
    # A pid above the kernel's pid_max cannot belong to a running worker.
    stale = parent / f"stage-{2**22 + 1}-0"
    stale.mkdir()
    own = parent / f"stage-{os.getpid()}-999999"
    own.mkdir()
    try:
        remove_stale_cgroups(parent)
        assert not stale.exists()
        assert own.exists()
    finally:
        for path in (stale, own):
            if path.exists():
                path.rmdir()


def test_background_process_is_stopped_after_main_exits(any_executor, run, processes_with_marker):
    # `sleep 601.25` is the marker: no other test starts a sleep of that length.
    marker = "601.25"
    started = time.monotonic()
    result = run(any_executor, ["sh", "-c", f"sleep {marker} & echo spawned-daemon"], timeout=60)
    elapsed = time.monotonic() - started

    assert result.exit == Exit(0, "exited")
    assert elapsed < 10
    assert "spawned-daemon" in result.stdout
    assert "1 background process left by the stage was stopped when the stage's main process exited" in result.lines("system")
    time.sleep(0.1)
    assert [pid for pid in processes_with_marker(f"sleep\0{marker}")] == []


def test_background_process_without_output_is_stopped(any_executor, run, processes_with_marker):
    marker = "601.375"
    result = run(any_executor, ["sh", "-c", f"sleep {marker} >/dev/null 2>&1 & sleep {marker} >/dev/null 2>&1 & exit 4"])
    assert result.exit == Exit(4, "exited")
    assert "2 background processes left by the stage were stopped when the stage's main process exited" in result.lines("system")
    time.sleep(0.1)
    assert processes_with_marker(f"sleep\0{marker}") == []


def test_stage_without_leftovers_has_no_notice(any_executor, run):
    result = run(any_executor, ["sh", "-c", "echo done"])
    assert result.exit == Exit(0, "exited")
    assert not any("background process" in line for line in result.lines("system"))


MIB = 1024 * 1024

# Allocates and touches the given number of MiB, one MiB at a time, so the pages are really used.
_ALLOCATE = "import sys\nblocks = []\nfor _ in range(int(sys.argv[1])):\n    blocks.append(bytearray(1024 * 1024))\nprint('allocated', flush=True)\n"


def _skip_without_memory_cgroup(result):
    if any("memory controller" in line and "not enforced" in line for line in result.lines("system")):
        pytest.skip("no writable cgroup with the memory controller on this machine")


def test_stage_over_memory_limit_is_stopped(any_executor, run, python_argv):
    result = run(any_executor, python_argv(_ALLOCATE, "300"), max_memory_bytes=128 * MIB)
    _skip_without_memory_cgroup(result)

    assert result.stdout == []
    assert result.exit.reason == "out_of_memory"
    assert result.exit.code == 128 + 9
    assert "The stage used more than 128 MiB of memory and was stopped" in result.exit.message
    assert "DENO_CI_STAGE_MEMORY_BYTES" in result.exit.message


def test_stage_under_memory_limit_passes(any_executor, run, python_argv):
    result = run(any_executor, python_argv(_ALLOCATE, "50"), max_memory_bytes=128 * MIB)
    _skip_without_memory_cgroup(result)

    assert result.exit == Exit(0, "exited")
    assert result.stdout == ["allocated"]


def test_memory_limit_below_one_mib_is_rejected(any_executor, workspace):
    with pytest.raises(ExecutorError, match="max_memory_bytes is 1000"):
        any_executor.start(StageSpec(argv=["true"], workspace=workspace, env={}, max_memory_bytes=1000))


def test_inherited_descriptors_stay_outside(any_executor, run):
    # As a shell or a terminal tool may start `deno-ci run` with a pipe of its own open.
    read, write = os.pipe()
    os.set_inheritable(write, True)
    try:
        result = run(any_executor, ["/bin/ls", "/proc/self/fd"])
    finally:
        os.close(read)
        os.close(write)
    assert result.exit.code == 0, result.lines("stderr")
    assert str(write) not in result.stdout
