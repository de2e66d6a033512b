"""Traffic weights in nginx: a rendered `upstream` block plus `nginx -s reload`.

The operator's nginx.conf includes the file this adapter writes (`upstream_file`)
and proxies to the upstream it names. nginx's weighted round robin takes weights
from 1 up, so a slot at 0 % is written as `down`.

settings (besides those of `_slots.py`):
  nginx: {"binary": "/usr/sbin/nginx", "prefix": "/etc/nginx/", "config": "/etc/nginx/nginx.conf",
          "upstream_file": "/etc/nginx/deno-ci/app.conf", "upstream": "app"}
"""

import logging
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

from app.deployments.adapters._slots import SlotAdapter
from app.deployments.adapters.base import AdapterError

log = logging.getLogger(__name__)

UPSTREAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
SERVER_LINE = re.compile(r"^\s*server\s+(\S+)\s+(?:weight=(\d+)|down);\s*#\s*slot\s+(\S+)\s*$")
# Seconds to wait for nginx to start workers with the new configuration.
RELOAD_TIMEOUT = 5.0


class NginxAdapter(SlotAdapter):
    """Slots behind nginx."""

    @property
    def nginx(self) -> dict:
        return self.settings.get("nginx") or {}

    def lb_problems(self) -> list[str]:
        problems = []
        for key in ("config", "upstream_file"):
            if not str(self.nginx.get(key) or "").startswith("/"):
                problems.append(f"nginx setting {key!r} must be an absolute path, got {self.nginx.get(key)!r}")
        if not UPSTREAM_NAME.match(str(self.nginx.get("upstream") or "")):
            problems.append(f"nginx setting 'upstream' must be a name like 'app', got {self.nginx.get('upstream')!r}")
        return problems

    def apply_weights(self, weights: dict[str, int]) -> None:
        path = Path(self.nginx["upstream_file"])
        previous = path.read_text() if path.exists() else None
        _write_atomically(path, self.render(weights))
        try:
            self._nginx("-t", "-q")
        except AdapterError:
            if previous is None:
                path.unlink()
            else:
                _write_atomically(path, previous)
            raise
        workers = self._worker_pids()
        self._nginx("-s", "reload")
        self._wait_for_new_workers(workers)
        log.info("nginx upstream %s: weights %s", self.nginx["upstream"], weights)

    def read_weights(self) -> dict[str, int]:
        path = Path(self.nginx["upstream_file"])
        weights = {name: 0 for name in self.slots}
        if not path.exists():
            return weights
        for line in path.read_text().splitlines():
            match = SERVER_LINE.match(line)
            if match and match.group(3) in weights:
                weights[match.group(3)] = int(match.group(2) or 0)
        return weights

    def render(self, weights: dict[str, int]) -> str:
        """Return the upstream block for `weights` (percent per slot)."""
        lines = ["# Written by Deno CI at every traffic change; edits here are overwritten.",
                 f"upstream {self.nginx['upstream']} {{"]
        for name, slot in self.slots.items():
            weight = weights.get(name, 0)
            state = f"weight={weight}" if weight > 0 else "down"
            lines.append(f"    server {slot['address']} {state};  # slot {name}")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _command(self, *arguments: str) -> list[str]:
        command = [self.nginx.get("binary") or "nginx"]
        if self.nginx.get("prefix"):
            command += ["-p", self.nginx["prefix"]]
        return command + ["-c", self.nginx["config"], *arguments]

    def _nginx(self, *arguments: str) -> None:
        try:
            result = subprocess.run(self._command(*arguments), capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise AdapterError(f"Cannot run nginx {' '.join(arguments)}: {error}") from error
        if result.returncode != 0:
            raise AdapterError(f"nginx {' '.join(arguments)} failed with exit code {result.returncode}: "
                               f"{result.stderr.strip()[:500]}")

    def _master_pid(self) -> int | None:
        pid_file = self.nginx.get("pid_file")
        try:
            return int(Path(pid_file).read_text().strip()) if pid_file else None
        except (OSError, ValueError):
            return None

    def _worker_pids(self) -> set[int]:
        master = self._master_pid()
        if master is None:
            return set()
        try:
            return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}
        except OSError:
            return set()

    def _wait_for_new_workers(self, old: set[int]) -> None:
        # A reload is asynchronous: until the old workers have exited, new connections may still meet
        # the old weights. Without `pid_file` there is nothing to watch, so this returns at once.
        if not old:
            return
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            current = self._worker_pids()
            if current - old and not current & old:
                return
            time.sleep(0.01)
        log.warning("nginx workers of the old configuration still ran %s s after a reload", RELOAD_TIMEOUT)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    temporary.write_text(text)
    os.replace(temporary, path)
