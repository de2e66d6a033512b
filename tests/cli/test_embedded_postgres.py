"""The embedded PostgreSQL, started again after it was killed."""

import shutil
import subprocess
import tempfile
from pathlib import Path

from app.embedded import EmbeddedPostgres


def test_starts_over_lock_file_of_reused_pid():
    # Outside pytest's temporary root, which only its owner may enter; the server runs as a user of its own.
    data = Path(tempfile.mkdtemp(prefix="deno-ci-embedded-"))
    server = EmbeddedPostgres(data)
    # A process of the server's own user, as a backend of another server would be.
    other = subprocess.Popen(["sleep", "60"], user=server._user)
    try:
        assert server.start()
        server.stop()
        # What a SIGKILLed postmaster leaves when its pid went to another program since.
        lock_file = server.pgdata / "postmaster.pid"
        lock_file.write_text(f"{other.pid}\n{server.pgdata}\n")
        if server._user:
            shutil.chown(lock_file, server._user, server._user)

        assert server.start()

        assert server.is_running()
    finally:
        other.kill()
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
