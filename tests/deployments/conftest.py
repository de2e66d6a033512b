"""Fixtures for the deployment tests: release backends in two slots behind real nginx or HAProxy."""

import shutil
import time

import pytest

from tests.deployments.servers import Haproxy, Nginx, ReleaseBackend, release_archive


def _require(binary: str) -> None:
    if shutil.which(binary) is None and shutil.which(binary, path="/usr/sbin") is None:
        pytest.skip(f"{binary} is not installed; run scripts/bootstrap --test")


@pytest.fixture
def slots(tmp_path):
    """Two release backends, `blue` and `green`, each answering the release in its `current` folder."""
    backends = {name: ReleaseBackend(tmp_path / "slots" / name) for name in ("blue", "green")}
    yield backends
    for backend in backends.values():
        backend.stop()


def _slot_settings(slots) -> dict:
    return {name: {"address": backend.address, "root": str(backend.root)} for name, backend in slots.items()}


@pytest.fixture
def nginx_target(tmp_path, slots):
    """Target settings of a real nginx in front of the two slots, and its public URL."""
    _require("nginx")
    folder = tmp_path / "nginx"
    folder.mkdir()
    server = Nginx(folder)
    yield {"type": "nginx", "slots": _slot_settings(slots), "releases": {"type": "local"},
           "nginx": server.settings(), "public_url": f"http://127.0.0.1:{server.port}/"}
    server.stop()


@pytest.fixture
def haproxy_target(tmp_path, slots):
    """Target settings of a real HAProxy in front of the two slots, and its public URL."""
    _require("haproxy")
    folder = tmp_path / "haproxy"
    folder.mkdir()
    settings = _slot_settings(slots)
    server = Haproxy(folder, settings)
    yield {"type": "haproxy", "slots": settings, "releases": {"type": "local"},
           "haproxy": server.settings(), "public_url": f"http://127.0.0.1:{server.port}/"}
    server.stop()


@pytest.fixture(params=["nginx", "haproxy"])
def target(request):
    """Each real load balancer in turn."""
    return request.getfixturevalue(f"{request.param}_target")


@pytest.fixture
def archives(tmp_path):
    """Make release archives: archives("v1") answers "v1"; archives("v2", status=500) answers 500."""
    folder = tmp_path / "archives"
    folder.mkdir()
    return lambda name, status=200: release_archive(folder, name, status)


@pytest.fixture
def project(db_app):
    from app.extensions import db
    from app.models import Project

    row = Project(name="web", clone_url="/nowhere")
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def deploy(project, archives):
    """Create a release and a deployment of it to an environment with `target`; return the deployment."""
    from app.deployments import requests as deployment_requests

    def create(target: dict, name: str, spec: dict | None = None, *, status: int = 200, environment="production",
               requested_by="alice", user=None):
        env = deployment_requests.ensure_environment(project, environment, target=target)
        release = deployment_requests.create_release(project, name, archives(name, status), commit_sha="a" * 40)
        return deployment_requests.create_deployment(env, release, spec or {}, requested_by=requested_by, user=user)

    return create


@pytest.fixture
def drive():
    """Drive a deployment in this process (what the RQ job does); return it reloaded."""
    from app.deployments import engine
    from app.extensions import db
    from app.models import Deployment

    def run(deployment_id: int) -> Deployment:
        # Workers started by other tests of the session may hold the lease; wait for them to let go.
        deadline = time.monotonic() + 60
        while True:
            engine.drive(deployment_id)
            deployment = db.session.get(Deployment, deployment_id, populate_existing=True)
            if deployment.worker is None or time.monotonic() > deadline:
                return deployment
            time.sleep(0.1)

    return run


@pytest.fixture
def drive_in_thread(db_app):
    """Drive a deployment in a thread with its own app context and session; return the thread."""
    import threading

    from app.deployments import engine
    from app.extensions import db

    threads = []

    def start(deployment_id: int) -> threading.Thread:
        def body():
            with db_app.app_context():
                try:
                    engine.drive(deployment_id)
                finally:
                    db.session.remove()

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(30)


@pytest.fixture
def sshd(tmp_path):
    """A real sshd on 127.0.0.1 that accepts the generated user key."""
    _require("sshd")
    from tests.deployments.servers import Sshd

    folder = tmp_path / "sshd"
    folder.mkdir()
    server = Sshd(folder)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_stray_workers(request):
    """Stop the session's RQ workers for tests that drive deployments themselves.

    Workers left running by an earlier test would take the drive jobs that creating a
    deployment queues, and race the test for the deployment's lease.
    """
    if "workers" not in request.fixturenames:
        request.getfixturevalue("worker_pool").stop()


@pytest.fixture
def workers_stopped_after(worker_pool):
    """Stop the session's RQ workers when the test ends.

    NOTE: a worker runs every job in one app context, and the notification planning jobs
    end on a read, so an idle worker can keep a transaction open that blocks the next
    test's TRUNCATE. Stopping the workers closes those transactions.
    """
    yield
    worker_pool.stop()
