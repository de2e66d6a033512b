"""Traffic weights in HAProxy: the runtime API over its UNIX socket, plus a rendered backend file for reloads.

The runtime API changes weights at once without a reload. The adapter also writes
the backend section into `backend_file` (HAProxy loads it as a second `-f` file), so
a reload or restart of HAProxy starts with the same weights. Server names in the
backend are the slot names; HAProxy weights 0-256 are used as percent 0-100.

settings (besides those of `_slots.py`):
  haproxy: {"socket": "/run/haproxy/admin.sock", "backend": "app", "backend_file": "/etc/haproxy/deno-ci-app.cfg"}
"""

import logging
import re
import socket
from pathlib import Path

from app.deployments.adapters._slots import SlotAdapter
from app.deployments.adapters.base import AdapterError
from app.deployments.adapters.nginx import _write_atomically

log = logging.getLogger(__name__)

BACKEND_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
SOCKET_TIMEOUT = 5.0


class HaproxyAdapter(SlotAdapter):
    """Slots behind HAProxy."""

    @property
    def haproxy(self) -> dict:
        return self.settings.get("haproxy") or {}

    def lb_problems(self) -> list[str]:
        problems = []
        for key in ("socket", "backend_file"):
            if not str(self.haproxy.get(key) or "").startswith("/"):
                problems.append(f"HAProxy setting {key!r} must be an absolute path, got {self.haproxy.get(key)!r}")
        if not BACKEND_NAME.match(str(self.haproxy.get("backend") or "")):
            problems.append(f"HAProxy setting 'backend' must be a name like 'app', got {self.haproxy.get('backend')!r}")
        return problems

    def apply_weights(self, weights: dict[str, int]) -> None:
        backend = self.haproxy["backend"]
        _write_atomically(Path(self.haproxy["backend_file"]), self.render(weights))
        commands = "; ".join(f"set weight {backend}/{slot} {weights.get(slot, 0)}" for slot in self.slots)
        answer = self.command(commands)
        if answer.strip():
            raise AdapterError(f"HAProxy rejected the weights {weights} for backend {backend!r}: {answer.strip()[:500]}")
        log.info("HAProxy backend %s: weights %s", backend, weights)

    def read_weights(self) -> dict[str, int]:
        backend = self.haproxy["backend"]
        weights = {}
        for slot in self.slots:
            answer = self.command(f"get weight {backend}/{slot}").strip()
            # The answer reads "20 (initial 1)".
            match = re.match(r"^(\d+)", answer)
            if not match:
                raise AdapterError(f"HAProxy has no server {backend}/{slot}: {answer[:200]}")
            weights[slot] = int(match.group(1))
        return weights

    def render(self, weights: dict[str, int]) -> str:
        """Return the backend section for `weights` (percent per slot)."""
        lines = ["# Written by Deno CI at every traffic change; edits here are overwritten.",
                 f"backend {self.haproxy['backend']}", "    balance roundrobin"]
        for name, slot in self.slots.items():
            lines.append(f"    server {name} {slot['address']} weight {weights.get(name, 0)}")
        return "\n".join(lines) + "\n"

    def command(self, text: str) -> str:
        """Send one line to the runtime API and return its answer."""
        path = self.haproxy["socket"]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(SOCKET_TIMEOUT)
                connection.connect(path)
                connection.sendall(text.encode() + b"\n")
                chunks = []
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
        except OSError as error:
            raise AdapterError(f"Cannot reach the HAProxy runtime API at {path}: {error}") from error
        return b"".join(chunks).decode(errors="replace")
