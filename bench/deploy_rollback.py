"""Time from an abort, or from a failed analysis probe, until every request reaches the old release.

Run: .venv/bin/python bench/deploy_rollback.py [--rounds 5]
Starts embedded PostgreSQL and Redis, two release backends, and real nginx and
HAProxy on 127.0.0.1 (Debian's packages, as in the tests). For each load
balancer and round it puts v1 live, starts a canary of a new release at 50 %,
and then either aborts it through the same function the API calls, or lets an
HTTP probe of a release that answers 500 fail. A client sends requests one after
another on new connections the whole time; the figure is the time from the abort
(or the failed probe's record) to the first request of the streak of answers
from v1 that lasts until the deployment has rolled back. Prints p50 and max.
The target is at most 2 s.
"""

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from flask import current_app  # noqa: E402

from bench._common import percentile  # noqa: E402
from bench._platform import platform  # noqa: E402
# The tests' server helpers start nginx, HAProxy and the release backends; the benchmark reuses them.
from tests.deployments.servers import Haproxy, Nginx, ReleaseBackend, release_archive  # noqa: E402

PAUSED = {"strategy": {"type": "canary", "steps": [{"setWeight": 50}, {"pause": {"duration": 600}}]}}
PROBED = {"strategy": {"type": "canary", "steps": [{"setWeight": 50}, {"analysis": {"type": "http", "requests": 5}}]}}


class Prober(threading.Thread):
    """Sends requests one after another and keeps (time, answer) pairs."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.answers, self.stopped = url, [], threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                answer = requests.get(self.url, timeout=2).text
            except requests.RequestException:
                answer = "no answer"
            self.answers.append((time.time(), answer))

    def all_old_since(self, start: float) -> float | None:
        """Return when the final streak of v1 answers after `start` began."""
        streak = None
        for moment, answer in self.answers:
            if moment < start:
                continue
            if answer == "v1":
                streak = streak or moment
            else:
                streak = None
        return streak


def target_of(kind: str, folder: Path, backends: dict) -> tuple[dict, object]:
    slots = {name: {"address": backend.address, "root": str(backend.root)} for name, backend in backends.items()}
    lb_folder = folder / kind
    lb_folder.mkdir()
    if kind == "nginx":
        server = Nginx(lb_folder)
        settings = {"nginx": server.settings()}
    else:
        server = Haproxy(lb_folder, slots)
        settings = {"haproxy": server.settings()}
    return {"type": kind, "slots": slots, "releases": {"type": "local"}, **settings,
            "public_url": f"http://127.0.0.1:{server.port}/"}, server


def one_round(environment, project, folder: Path, target: dict, name: str, abort: bool) -> float:
    from app.deployments import requests as deployment_requests
    from app.deployments.status import DeploymentStatus
    from app.extensions import db
    from app.models import Deployment

    release = deployment_requests.create_release(project, name, release_archive(folder, name, 200 if abort else 500))
    deployment = deployment_requests.create_deployment(environment, release, PAUSED if abort else PROBED,
                                                       requested_by="bench")
    prober = Prober(target["public_url"])
    prober.start()
    app = current_app._get_current_object()
    driver = threading.Thread(target=_drive, args=(app, deployment.id), daemon=True)
    driver.start()
    status = lambda: db.session.get(Deployment, deployment.id, populate_existing=True)  # noqa: E731
    if abort:
        _wait(lambda: status().status == DeploymentStatus.PAUSED)
        start = time.time()
        deployment_requests.request_abort(status(), "Aborted by the benchmark")
    _wait(lambda: status().status == DeploymentStatus.ROLLED_BACK)
    driver.join(10)
    time.sleep(0.3)
    prober.stopped.set()
    prober.join(5)
    if not abort:
        failed = status().events.filter_by(kind="analysis").first()
        start = failed.time.replace(tzinfo=UTC).timestamp()
    streak = prober.all_old_since(start)
    return max(streak - start, 0.0) if streak else float("nan")


def _drive(app, deployment_id: int) -> None:
    from app.deployments import engine
    from app.extensions import db

    with app.app_context():
        try:
            engine.drive(deployment_id)
        finally:
            db.session.remove()


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise RuntimeError(f"condition not met within {timeout} s")


def measure(kind: str, rounds: int, scratch: Path) -> dict[str, list[float]]:
    from app.deployments import engine
    from app.deployments import requests as deployment_requests
    from app.extensions import db
    from app.models import Project

    folder = scratch / f"bench-{kind}"
    folder.mkdir()
    backends = {name: ReleaseBackend(folder / "slots" / name) for name in ("blue", "green")}
    target, server = target_of(kind, folder, backends)
    try:
        project = Project(name=f"bench-{kind}", clone_url="/nowhere")
        db.session.add(project)
        db.session.commit()
        environment = deployment_requests.ensure_environment(project, "production", target=target)
        first = deployment_requests.create_release(project, "v1", release_archive(folder, "v1"))
        engine.drive(deployment_requests.create_deployment(environment, first, {}, requested_by="bench").id)
        figures = {"abort": [], "failed probe": []}
        for number in range(rounds):
            figures["abort"].append(one_round(environment, project, folder, target, f"a{number}", True))
            figures["failed probe"].append(one_round(environment, project, folder, target, f"p{number}", False))
        return figures
    finally:
        server.stop()
        for backend in backends.values():
            backend.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rollbacks per load balancer and trigger (default 5)")
    arguments = parser.parse_args()
    with platform(workers=0) as (app, _), tempfile.TemporaryDirectory(prefix="bench-deploy-") as scratch:
        print(f"rollback until all traffic is on the old release, {arguments.rounds} rounds each (target <= 2 s)")
        for kind in ("nginx", "haproxy"):
            figures = measure(kind, arguments.rounds, Path(scratch))
            for trigger, values in figures.items():
                rounded = ", ".join(f"{value:.3f}" for value in values)
                print(f"  {kind:8} {trigger:13} p50 {percentile(values, 0.5):.3f} s   max {max(values):.3f} s   ({rounded})")


if __name__ == "__main__":
    main()
