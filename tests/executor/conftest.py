"""Fixtures for the executor tests: real executors, workspaces outside /tmp and a run helper."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jobs.executor import ControlEvent, ExecutorUnavailableError, Exit, LogChunk, StageSpec, get_executor

HOST_PYTHON = "/usr/bin/python3"
"""The system Python, which the sandbox mounts under /usr. The tests' own virtualenv may be hidden inside it."""


@dataclass
class StageResult:
    """Everything one execution yielded, sorted by kind."""

    events: list = field(default_factory=list)

    @property
    def exit(self) -> Exit:
        return self.events[-1]

    def lines(self, stream: str) -> list[str]:
        return [event.text for event in self.events if isinstance(event, LogChunk) and event.stream == stream]

    @property
    def stdout(self) -> list[str]:
        return self.lines("stdout")

    @property
    def controls(self) -> list[dict]:
        return [event.data for event in self.events if isinstance(event, ControlEvent)]


@pytest.fixture
def workspace():
    """An empty workspace under /var/tmp, so that /tmp inside a sandbox stays empty."""
    path = Path(tempfile.mkdtemp(prefix="deno-ci-test-workspace-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _executor_or_skip(name: str):
    try:
        return get_executor(name)
    except ExecutorUnavailableError as error:
        pytest.skip(str(error))


@pytest.fixture
def bubblewrap():
    yield _executor_or_skip("bubblewrap")
    from jobs.executor.bubblewrap import close_launchers

    # A test may swap in a stand-in bwrap, whose launchers would otherwise wait until the tests end.
    close_launchers()


@pytest.fixture
def unsandboxed():
    return _executor_or_skip("unsandboxed")


@pytest.fixture(params=["bubblewrap", "unsandboxed"])
def any_executor(request):
    """Each local executor in turn, for behaviour that both must share."""
    return _executor_or_skip(request.param)


@pytest.fixture
def run(workspace):
    """Run argv to the end with an executor and return a `StageResult`; keyword arguments go to `StageSpec`."""

    def run_stage(executor, argv: list[str], **options) -> StageResult:
        options.setdefault("env", {})
        options.setdefault("network", False)
        options.setdefault("timeout", 60.0)
        spec = StageSpec(argv=argv, workspace=options.pop("workspace", workspace), **options)
        return StageResult(list(executor.start(spec).events()))

    return run_stage


@pytest.fixture
def python_argv():
    """Build argv that runs Python code with the system Python; skips the test when it is missing."""
    if not Path(HOST_PYTHON).exists():
        pytest.skip(f"{HOST_PYTHON} is missing")

    def build(code: str, *arguments: str) -> list[str]:
        return [HOST_PYTHON, "-c", code, *arguments]

    return build


def _processes_with_marker(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def processes_with_marker():
    """Return the host pids whose command line contains a marker string."""
    return _processes_with_marker


@pytest.fixture
def deno_binary() -> Path:
    """The Deno binary from the `deno` PyPI package; skips the test when it is not installed."""
    try:
        import deno
    except ImportError:
        pytest.skip("the deno package is not installed")
    return Path(deno.find_deno_bin()).resolve()
