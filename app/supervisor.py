"""`deno-ci serve`'s process tree: the web server, the RQ workers and the scheduler.

Children that die are started again; stopping `serve` (Ctrl-C or SIGTERM) stops
every child, then the embedded servers it started. The children are also killed
when `serve` is killed (app/die_with_parent.py), and the next `serve` of the data
folder takes over the embedded servers that were left running.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from flask import Flask

from app import scheduler

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 10
# Embedded servers are checked every this many half-second ticks.
SERVICE_CHECK_TICKS = 4
WEB_THREADS = 32


class Supervisor:
    def __init__(self, app: Flask, host: str, port: int, workers: int) -> None:
        self.app = app
        self.commands = {"web": self._web_command(host, port)}
        for index in range(workers):
            self.commands[f"worker-{index + 1}"] = [sys.executable, "-m", "app.cli", "worker"]
        self.children: dict[str, subprocess.Popen] = {}
        self.stop = threading.Event()

    @staticmethod
    def _web_command(host: str, port: int) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "2",
            "--threads", str(WEB_THREADS), "--bind", f"{host}:{port}", "--log-level", "warning", "wsgi:app",
        ]

    def _start(self, name: str) -> None:
        # Through app.die_with_parent: a serve that is killed takes its children with it.
        command = [sys.executable, "-m", "app.die_with_parent", str(os.getpid()), *self.commands[name]]
        self.children[name] = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy())
        log.info("started %s (pid %s)", name, self.children[name].pid)

    def run(self) -> None:
        """Start everything and watch it until a stop signal arrives."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop.set())
        for name in self.commands:
            self._start(name)
        duties = threading.Thread(target=self._scheduler, name="scheduler", daemon=True)
        duties.start()
        services = self.app.extensions.get("embedded_services")
        ticks = 0
        while not self.stop.wait(0.5):
            ticks += 1
            if services is not None and ticks % SERVICE_CHECK_TICKS == 0:
                self._restart_services(services)
            for name, child in list(self.children.items()):
                if child.poll() is not None:
                    log.warning("%s exited with %s; starting it again", name, child.returncode)
                    self._start(name)
        self._stop_children()
        duties.join(5)
        log.info("stopped")

    @staticmethod
    def _restart_services(services) -> None:
        try:
            services.restart_stopped()
        except Exception as error:  # noqa: BLE001  (a failed restart is tried again at the next check)
            log.error("an embedded server could not start again: %s", error)

    def _scheduler(self) -> None:
        with self.app.app_context():
            scheduler.run_forever(self.stop)

    def _stop_children(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        for name, child in self.children.items():
            try:
                child.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %s s; killing it", name, STOP_GRACE_SECONDS)
                child.kill()
                child.wait()
