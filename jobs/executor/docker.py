"""An executor that runs each stage in a container on a Docker engine, through the `docker` SDK.

The container gets the workspace and each `Mount` as bind volumes at the same
paths, a read-only root, a private /tmp tmpfs, no capabilities,
`no-new-privileges`, a pids limit, and either no network ("none") or the
engine's default bridge. It runs as the worker's own uid and gid, so it can
write the workspace that the worker checked out.

Its environment is the image's own ENV (Docker always merges it in) overridden
by `spec.env`, plus HOME=/tmp when `spec.env` lacks it.

Control events cannot arrive on an inherited pipe, because the engine starts the
process. The worker instead creates a FIFO in a private folder that is mounted
at CONTROL_FOLDER, and the container's entrypoint opens it as descriptor 3
before it runs the command. That needs a shell in the image and an engine on
this machine: a FIFO does not cross to a remote engine.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import shutil
import tempfile
import threading
from pathlib import Path

from ._process import QueuedExecution, close_quietly
from ._streams import ControlDecoder, OutputDecoder
from .base import ExecutorError, ExecutorUnavailableError, Exit, ExitReason, StageSpec
from .validation import check_spec

log = logging.getLogger(__name__)

# NOTE: the tag follows the pinned `deno` PyPI package; it was not pulled here, because this machine has no engine.
DEFAULT_IMAGE = "denoland/deno:debian-2.9.8"
"""Image used when `DockerExecutor` gets none; override it with DENO_CI_DOCKER_IMAGE."""

CONTROL_FOLDER = "/run/deno-ci"
"""Folder inside the container that contains the control FIFO."""

_ENTRYPOINT_SCRIPT = 'exec 3>"$0" || exit 126; exec "$@"'


def container_options(spec: StageSpec, image: str, control_folder: Path) -> dict:
    """Translate `spec` into keyword arguments for `client.containers.create()` (a pure function)."""
    volumes = {str(mount.path): {"bind": str(mount.path), "mode": "rw" if mount.writable else "ro"} for mount in spec.mounts}
    volumes[str(spec.workspace)] = {"bind": str(spec.workspace), "mode": "rw"}
    volumes[str(control_folder)] = {"bind": CONTROL_FOLDER, "mode": "rw"}
    labels = {"deno-ci.executor": "docker"}
    for key, label in (("DENO_CI_RUN", "deno-ci.run"), ("DENO_CI_STAGE", "deno-ci.stage")):
        if key in spec.env:
            labels[label] = spec.env[key]
    return {
        "image": image,
        "entrypoint": ["/bin/sh", "-c", _ENTRYPOINT_SCRIPT, f"{CONTROL_FOLDER}/control"],
        "command": list(spec.argv),
        "working_dir": str(spec.workspace),
        "environment": {"HOME": "/tmp", **spec.env},
        "user": f"{os.getuid()}:{os.getgid()}",
        "volumes": volumes,
        "network_mode": "bridge" if spec.network else "none",
        "pids_limit": spec.max_processes,
        # Equal limits for memory and memory plus swap leave the container no swap.
        # TODO: report a container that the OOM killer stopped (State.OOMKilled) as ExitReason.OUT_OF_MEMORY.
        "mem_limit": spec.max_memory_bytes,
        "memswap_limit": spec.max_memory_bytes,
        "read_only": True,
        "tmpfs": {"/tmp": "rw,nosuid,nodev,mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "init": True,
        "hostname": "deno-ci-stage",
        "labels": labels,
        "detach": True,
        "stdin_open": False,
        "tty": False,
    }


def connect_engine():
    """Connect to the Docker engine and ping it; raise `ExecutorUnavailableError` when that fails."""
    try:
        import docker
    except ImportError as error:
        raise ExecutorUnavailableError(
            "Cannot use the docker executor: the 'docker' Python package is missing. Install it with pip install docker"
        ) from error
    host = os.environ.get("DOCKER_HOST", "the default socket /var/run/docker.sock")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        raise ExecutorUnavailableError(
            f"Cannot use the docker executor: no Docker engine responded at {host} ({error}). "
            "Start the Docker engine or set DOCKER_HOST to a reachable one, or choose the 'bubblewrap' executor"
        ) from error
    return client


class DockerExecutor:
    """Runs each stage in a new container; see the module docstring for what the container gets."""

    name = "docker"
    # TODO: hold a prepared container until its stage may start, as the other executors do.
    can_hold = False

    def __init__(self, image: str | None = None, client=None) -> None:
        self.image = image or os.environ.get("DENO_CI_DOCKER_IMAGE", DEFAULT_IMAGE)
        self.client = client if client is not None else connect_engine()

    def start(self, spec: StageSpec) -> DockerExecution:
        """Create the stage's container and start it; raise `ExecutorError` if the engine rejects it."""
        import docker

        check_spec(spec)
        if spec.held:
            raise ExecutorError("Cannot hold a stage in the docker executor: start it when it may run")
        control_folder = Path(tempfile.mkdtemp(prefix="deno-ci-control-"))
        os.mkfifo(control_folder / "control", 0o600)
        try:
            container = self.client.containers.create(**container_options(spec, self.image, control_folder))
        except docker.errors.DockerException as error:
            shutil.rmtree(control_folder, ignore_errors=True)
            raise ExecutorError(f"Cannot create the stage container from image {self.image!r}: {error}") from error
        return DockerExecution(spec, self.client, container, control_folder).begin()


class DockerExecution(QueuedExecution):
    """One stage container: its output from the engine's attach stream, its control events from the FIFO."""

    def __init__(self, spec: StageSpec, client, container, control_folder: Path) -> None:
        super().__init__(spec, "docker")
        self.client = client
        self.container = container
        self.control_folder = control_folder

    def _kill_container(self) -> None:
        import docker

        try:
            self.container.kill()
        except docker.errors.DockerException as error:  # usually: the container already stopped
            log.debug("kill of container %s for %s failed: %s", self.container.id, self.label, error)

    def _run(self) -> Exit:
        import docker

        fifo = self.control_folder / "control"
        # Opened non-blocking for reading first; our own write end then keeps the
        # FIFO from reporting end of file before the container opens it.
        control_read = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        control_keepalive = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        reader = threading.Thread(target=self._read_control, args=(control_read,), daemon=True)
        try:
            stream = self.client.api.attach(self.container.id, stdout=True, stderr=True, stream=True, logs=True, demux=True)
            self.container.start()
            self._set_killer(self._kill_container)
            reader.start()
            self._read_output(stream)
            status = self.container.wait()
        except docker.errors.DockerException as error:
            return Exit(None, ExitReason.ERROR, f"The stage container {self.container.id[:12]} failed: {error}")
        finally:
            close_quietly(control_keepalive)
            if reader.is_alive():
                reader.join(timeout=2.0)
            close_quietly(control_read)
            self._remove_container()
            shutil.rmtree(self.control_folder, ignore_errors=True)
        return self._stopped_exit() or Exit(int(status.get("StatusCode", -1)), ExitReason.EXITED)

    def _read_output(self, stream) -> None:
        output = OutputDecoder(self.spec.max_output_bytes, self.spec.max_line_bytes)
        for stdout, stderr in stream:
            if stdout:
                self._emit_all(output.feed("stdout", stdout))
            if stderr:
                self._emit_all(output.feed("stderr", stderr))
        self._emit_all(output.finish())

    def _read_control(self, descriptor: int) -> None:
        control = ControlDecoder()
        while True:
            select.select([descriptor], [], [])
            try:
                data = os.read(descriptor, 64 * 1024)
            except OSError as error:
                if error.errno == errno.EAGAIN:
                    continue
                break
            if not data:
                break
            self._emit_all(control.feed(data))
        self._emit_all(control.finish())

    def _remove_container(self) -> None:
        import docker

        try:
            self.container.remove(force=True)
        except docker.errors.DockerException as error:
            log.warning("cannot remove container %s of %s: %s", self.container.id, self.label, error)
