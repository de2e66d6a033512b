"""Fixtures with real parts: embedded PostgreSQL and Redis, RQ workers, git repositories."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"


def _cheap_password_hashing() -> None:
    """Hash the tests' passwords with Argon2id at its lowest cost.

    The default cost takes about 0.1 s per hash and per check, which was half the time
    of the access tests. A hash carries its own parameters, so the servers that tests
    start check these hashes as quickly.
    """
    import argon2

    from app.auth import passwords

    passwords._hasher = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


_cheap_password_hashing()


@pytest.fixture(scope="session")
def data_dir():
    """The session's data folder, outside pytest's temporary root.

    Each pytest session that starts on the machine sets that root back to owner-only
    access. The embedded PostgreSQL runs as a user of its own and would then lose its
    data folder while this session still runs.
    """
    folder = Path(tempfile.mkdtemp(prefix="deno-ci-tests-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def services(data_dir):
    """Embedded PostgreSQL and Redis for the whole session, in a data folder of its own."""
    from app.embedded import Services

    os.environ["DENO_CI_DATA"] = str(data_dir)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        os.environ.pop(name, None)
    # Short enough that the lost-worker test does not wait long; long enough for a busy machine.
    os.environ["DENO_CI_STAGE_HEARTBEAT_TIMEOUT"] = "6"
    started = Services(data_dir)
    started.start()
    started.export()
    yield started
    started.stop_started()


@pytest.fixture(scope="session")
def app(services):
    from flask_migrate import upgrade

    from app.factory import create_app

    application = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    with application.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    return application


@pytest.fixture
def db_app(app):
    """The app with an app context pushed and every table and the queue emptied."""
    from app.extensions import db
    from app.queue import redis_connection

    with app.app_context():
        _empty_tables(db)
        # Run ids start again at 1, so folders of an earlier test's runs would pass for this test's.
        for folder in ("artifacts", "workspaces"):
            shutil.rmtree(Path(app.config["DATA_DIR"]) / folder, ignore_errors=True)
        redis_connection().delete("rq:queue:deno-ci")
        for key in redis_connection().scan_iter("deno-ci:rejected-deliveries:*"):
            redis_connection().delete(key)
        yield app
        db.session.remove()


def _empty_tables(db) -> None:
    """Empty every table, trying again while a worker still ending an earlier test's run holds locks."""
    from sqlalchemy.exc import OperationalError

    # Every mapped table, so a table added on any branch is emptied too; referencing
    # tables come first. DELETE, not TRUNCATE: on these small tables TRUNCATE took about
    # 0.1 s per test, about a sixth of the suite, since it makes new files for every table.
    wipe = "; ".join(f"DELETE FROM {table.name}" for table in reversed(db.metadata.sorted_tables))
    # Ids start at 1 again, as each test expects.
    restart = "SELECT setval(format('%I', sequencename), 1, false) FROM pg_sequences WHERE schemaname = 'public'"
    for attempt in range(10):
        try:
            db.session.execute(db.text("SET lock_timeout = '5s'"))
            db.session.execute(db.text(wipe))
            db.session.execute(db.text(restart))
            db.session.commit()
            return
        except OperationalError:
            db.session.rollback()
            if attempt == 9:
                raise
            # Whatever an earlier test left talking to the database (a live log socket of
            # the live server polling a run, a worker) is of no use to this test, and its
            # queries keep colliding with TRUNCATE; pools reconnect through pre-ping.
            db.session.execute(db.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ))
            db.session.commit()
            time.sleep(0.5)


@pytest.fixture
def admin(db_app):
    from app.auth.passwords import hash_password
    from app.extensions import db
    from app.models import User

    user = User(username="admin", password_hash=hash_password("admin-password"), is_admin=True)
    db.session.add(user)
    db.session.commit()
    return user


@pytest.fixture
def client(db_app, admin):
    """A test client signed in as the administrator."""
    test_client = db_app.test_client()
    response = test_client.post("/login", data={"username": "admin", "password": "admin-password"})
    assert response.status_code == 302
    return test_client


class WorkerPool:
    """Real `deno-ci worker` processes, started on demand and stopped at the end of the session."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []

    def start(self, count: int = 2) -> None:
        while len([p for p in self.processes if p.poll() is None]) < count:
            self.processes.append(subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=os.environ.copy()))
        time.sleep(0.5)

    def stop(self) -> None:
        """Stop the workers; one still running a job gets RQ's second SIGTERM, which ends the job at once."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            for signal_number, seconds in ((signal.SIGTERM, 1), (signal.SIGTERM, 5), (signal.SIGKILL, None)):
                try:
                    process.wait(seconds)
                    break
                except subprocess.TimeoutExpired:
                    process.send_signal(signal_number)
        self.processes.clear()


@pytest.fixture(scope="session")
def worker_pool(services, app):
    pool = WorkerPool()
    yield pool
    pool.stop()


@pytest.fixture
def workers(worker_pool, db_app):
    """Two running workers, stopped when the test ends so later tests see their runs stay queued."""
    worker_pool.start(2)
    yield worker_pool
    worker_pool.stop()


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                            env={**os.environ, "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.com",
                                 "GIT_COMMITTER_NAME": "Test Author", "GIT_COMMITTER_EMAIL": "author@example.com"})
    return result.stdout.strip()


@pytest.fixture
def make_repo(tmp_path):
    """Create a git repository on branch main from {path: content}; return its folder."""
    counter = iter(range(1000))

    def create(files: dict[str, str], message: str = "Initial commit") -> Path:
        folder = tmp_path / f"repo-{next(counter)}"
        folder.mkdir()
        git(folder, "init", "--quiet", "--initial-branch=main")
        write_files(folder, files)
        commit_all(folder, message)
        return folder

    return create


def write_files(folder: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if name.endswith(".sh"):
            path.chmod(0o755)


def commit_all(folder: Path, message: str) -> str:
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(folder, "rev-parse", "HEAD")


# How often a test server's loop looks for shutdown(). With socketserver's default of
# 0.5 s, stopping each test's server took up to half a second.
SHUTDOWN_POLL_SECONDS = 0.02


def serve_in_thread(server) -> threading.Thread:
    """Run `server.serve_forever` in a daemon thread that notices `server.shutdown()` within 20 ms; return the thread."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, daemon=True)
    thread.start()
    return thread


def merge_branch(folder: Path, branch_files: dict[str, str], main_files: dict[str, str]) -> str:
    """Commit `branch_files` on a new branch and `main_files` on main, then merge the branch with a merge commit; return its id."""
    git(folder, "checkout", "-q", "-b", "feature")
    write_files(folder, branch_files)
    commit_all(folder, "Add the feature")
    git(folder, "checkout", "-q", "main")
    write_files(folder, main_files)
    commit_all(folder, "Change main")
    git(folder, "merge", "-q", "--no-ff", "feature", "-m", "Merge the feature")
    return git(folder, "rev-parse", "HEAD")


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):
    """Poll `predicate` until it returns something true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture(scope="session")
def live_server(app):
    """The real app served on 127.0.0.1 by werkzeug in a thread (WebSockets included)."""

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def signed_in_session(live_server, admin):
    """A requests session signed in to the live server as the administrator."""
    import requests

    session = requests.Session()
    response = session.post(f"{live_server}/login", data={"username": "admin", "password": "admin-password"},
                            allow_redirects=False)
    assert response.status_code == 302
    return session
