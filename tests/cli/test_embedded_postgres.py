"""The embedded PostgreSQL, started again after it was killed."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from app.embedded import EmbeddedPostgres


@pytest.fixture
def stopped_server():
    """An embedded PostgreSQL that ran once and was stopped."""
    # Outside pytest's temporary root, which only its owner may enter; the server runs as a user of its own.
    data = Path(tempfile.mkdtemp(prefix="deno-ci-embedded-"))
    server = EmbeddedPostgres(data)
    try:
        assert server.start()
        server.stop()
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def _leave_lock_file(server: EmbeddedPostgres, path: Path, pid: int) -> None:
    """Write the lock file a postmaster with `pid` would leave at `path`."""
    path.write_text(f"{pid}\n{server.pgdata}\n")
    if server._user:
        shutil.chown(path, server._user, server._user)


def test_starts_over_lock_file_of_reused_pid(stopped_server):
    # A process of the server's own user, as a backend of another server would be.
    other = subprocess.Popen(["sleep", "60"], user=stopped_server._user)
    try:
        # What a SIGKILLed postmaster leaves when its pid went to another program since.
        _leave_lock_file(stopped_server, stopped_server.pgdata / "postmaster.pid", other.pid)

        assert stopped_server.start()
        assert stopped_server.is_running()
    finally:
        other.kill()


def test_starts_over_unreaped_postmaster(stopped_server):
    # Ended but not reaped: a zombie, as a killed postmaster is until its parent reaps it.
    zombie = subprocess.Popen(["true"], user=stopped_server._user)
    try:
        while Path(f"/proc/{zombie.pid}/cmdline").read_bytes():
            time.sleep(0.01)
        # What the killed postmaster leaves: the data folder's lock file and its socket's lock file.
        port = stopped_server.state["port"]
        for name in ("postmaster.pid", f".s.PGSQL.{port}.lock"):
            _leave_lock_file(stopped_server, stopped_server.pgdata / name, zombie.pid)

        assert stopped_server.start()
        assert stopped_server.is_running()
    finally:
        zombie.wait()
