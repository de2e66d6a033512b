"""`deno-ci serve` as the README starts it: embedded servers, web, workers, one serve per data folder."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Generous bounds for a busy 2-core machine; the test only waits this long when something hangs.
START_SECONDS = 120
END_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli_env() -> dict[str, str]:
    # No URLs: the commands use the embedded servers of their data folder, as a newcomer's do.
    return {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "--data", str(data), *args], cwd=ROOT, env=_cli_env(),
                          capture_output=True, text=True, timeout=START_SECONDS)


def _serve_log(data: Path, port: int) -> Path:
    return data.parent / f"serve-{port}.log"


def _start_serve(data: Path, port: int) -> subprocess.Popen:
    # Standard error goes to a file that a failed start shows, because an unread pipe would fill up.
    with open(_serve_log(data, port), "a") as errors:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "--data", str(data), "serve", "--port", str(port),
                                 "--workers", "1"], cwd=ROOT, env=_cli_env(), stdout=subprocess.PIPE,
                                stderr=errors, text=True)


def _wait_until_served(port: int, serve: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_SECONDS
    errors = _serve_log(Path(serve.args[4]), port)
    while time.monotonic() < deadline:
        assert serve.poll() is None, f"serve ended while starting:\n{errors.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            # A web worker still loading the application under load may take longer than the timeout.
            time.sleep(0.2)
    pytest.fail(f"nothing answered on port {port} within {START_SECONDS} s")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, waiting = set(), [pid]
    while waiting:
        for child in children.get(waiting.pop(), []):
            found.add(child)
            waiting.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _wait_ended(pids: set[int]) -> set[int]:
    deadline = time.monotonic() + END_SECONDS
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(pids)


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "(ended)"


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postgres" / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


def _postgres_answers(data: Path) -> bool:
    pid_file = data / "postgres" / "postmaster.pid"
    try:
        port = int(pid_file.read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return False
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _embedded_servers_run(data: Path) -> list[str]:
    return [name for name, pid_file in (("postgres", data / "postgres" / "postmaster.pid"),
                                        ("redis", data / "redis" / "redis.pid")) if pid_file.exists()]


def test_serve_owns_data_folder(tmp_path):
    data, port = tmp_path / "data", _free_port()
    serve = _start_serve(data, port)
    try:
        _wait_until_served(port, serve)
        second = _cli(data, "serve", "--port", str(_free_port()))
        assert second.returncode == 1
        assert f"serves the data folder {data}" in second.stderr
        assert (data / "served-url").read_text().strip() == f"http://127.0.0.1:{port}"

        port_in_use = _cli(tmp_path / "other-data", "serve", "--port", str(port))
        assert port_in_use.returncode == 1
        assert f"Cannot serve on 127.0.0.1:{port}" in port_in_use.stderr

        # An embedded server that dies is started again, so a new postmaster accepts connections.
        postmaster = _postmaster_pid(data)
        os.kill(postmaster, signal.SIGKILL)
        deadline = time.monotonic() + START_SECONDS
        while _postmaster_pid(data) in (None, postmaster) or not _postgres_answers(data):
            assert time.monotonic() < deadline, "the killed PostgreSQL was not started again"
            time.sleep(0.2)

        # The embedded servers are left to the next serve; the web server and workers must go.
        children = {pid for pid in _descendants(serve.pid)
                    if "app.cli" in _command_of(pid) or "gunicorn" in _command_of(pid)}
        serve.kill()
        serve.wait()
        assert {pid: _command_of(pid) for pid in _wait_ended(children)} == {}

        # The next serve takes over what the killed one left: the embedded servers.
        again = _start_serve(data, port)
        try:
            _wait_until_served(port, again)
        finally:
            again.send_signal(signal.SIGTERM)
            again.wait(END_SECONDS)
        assert again.returncode == 0
        assert _embedded_servers_run(data) == []
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        _stop_leftovers(data)


def _stop_leftovers(data: Path) -> None:
    """Stop the embedded servers that a failed test left running."""
    for pid_file in (data / "postgres" / "postmaster.pid", data / "redis" / "redis.pid"):
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass


def test_trigger_without_serve_says_so(tmp_path):
    data = tmp_path / "data"
    result = _cli(data, "trigger", "web", "--branch", "main")
    assert result.returncode == 1
    assert f"The platform is not running on the data folder {data}" in result.stderr
    assert _embedded_servers_run(data) == []
