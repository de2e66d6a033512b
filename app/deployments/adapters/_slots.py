"""Your own servers as slots: a fixed set of backend addresses, each serving one release folder.

A slot is one backend (say `blue` at 10.0.0.5:8001) whose `current` release folder
decides what it serves. A new release goes into a slot that the live release does
not use, at weight 0; the load balancer's weights then move traffic between the
two slots. Which release a slot holds is read from its `current` symlink, and the
weights from the load balancer, so `describe()` reports the target's real state.

settings:
  slots: {name: {"address": "host:port", "root": "/srv/app/<slot>"}}, at least two
  releases: {"type": "local"} or {"type": "ssh", host, port, user, host_key}
  activate_command: optional shell command run after a slot's switch ({slot} and {root} replaced)
  readiness_path: path a slot must answer before it gets traffic (default "/")
  public_url: the load balancer's address, for probes of the split traffic
"""

import logging
import re
import subprocess
import time
from abc import abstractmethod

import requests

from app.deployments.adapters.base import (
    Adapter, AdapterError, Capabilities, InvalidTargetError, TargetState,
)
from app.deployments.adapters.release_folders import check_release_name, release_folders

log = logging.getLogger(__name__)

SLOT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
ADDRESS = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")


class SlotAdapter(Adapter):
    """The part shared by the nginx and HAProxy adapters; subclasses apply and read the weights."""

    capabilities = Capabilities(max_live_releases=2, weight_granularity=1, preview_url=True)

    def __init__(self, settings: dict, credentials: dict | None = None) -> None:
        super().__init__(settings, credentials)
        self.slots: dict = settings.get("slots") or {}
        self._folders = None

    @property
    def folders(self):
        if self._folders is None:
            self._folders = release_folders(self.settings.get("releases"), self.credentials)
        return self._folders

    # -- to implement ---------------------------------------------------------------------------

    @abstractmethod
    def apply_weights(self, weights: dict[str, int]) -> None:
        """Give each slot its weight (percent; 0 means no traffic) on the load balancer."""

    @abstractmethod
    def read_weights(self) -> dict[str, int]:
        """Return each slot's weight as the load balancer has it."""

    def lb_problems(self) -> list[str]:
        return []

    # -- the interface ----------------------------------------------------------------------------

    def validate(self) -> None:
        problems = list(self.lb_problems())
        if not isinstance(self.slots, dict) or len(self.slots) < 2:
            problems.append("Setting 'slots' needs at least two slots, each with an 'address' and a 'root'")
        else:
            for name, slot in self.slots.items():
                problems.extend(_slot_problems(name, slot))
        try:
            folders = self.folders
        except InvalidTargetError as error:
            problems.extend(error.problems)
        else:
            problems.extend(getattr(folders, "problems", lambda: [])())
        if problems:
            raise InvalidTargetError(problems)

    def describe(self) -> TargetState:
        releases = self._slot_releases()
        weights = self.read_weights()
        split: dict[str, int] = {}
        for slot, weight in weights.items():
            if weight > 0 and releases.get(slot):
                split[releases[slot]] = split.get(releases[slot], 0) + weight
        installed = sorted({name for name in releases.values() if name})
        return TargetState(split=_as_percent(split), installed=installed)

    def prepare(self, release: str, artifact: str, stable: str | None) -> dict[str, int]:
        check_release_name(release)
        releases = self._slot_releases()
        slot = self._slot_for(release, stable, releases)
        weights = self.read_weights()
        if weights.get(slot, 0) > 0 and releases.get(slot) != release:
            weights[slot] = 0
            self.apply_weights(weights)
        root = self.slots[slot]["root"]
        self.folders.install(root, release, artifact)
        self.folders.activate(root, release)
        self._run_activate_command(slot)
        log.info("release %s installed in slot %s", release, slot)
        return self.describe().split

    def wait_until_ready(self, release: str, timeout: float) -> None:
        url = self.preview_url(release)
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException as error:
                last_error = str(error)
            time.sleep(0.2)
        raise AdapterError(f"Release {release!r} did not answer at {url} within {timeout:g} s: {last_error}")

    def set_traffic(self, release: str, weight: int, stable: str | None) -> dict[str, int]:
        weight = self.check_weight(weight)
        releases = self._slot_releases()
        slot = self._slot_holding(release, releases)
        weights = {name: 0 for name in self.slots}
        weights[slot] = weight
        if stable is not None and stable != release:
            weights[self._slot_holding(stable, releases)] = 100 - weight
        elif weight != 100:
            raise InvalidTargetError([f"Weight {weight} for {release!r} leaves traffic unserved: there is no "
                                      f"live release to take the other {100 - weight} %"])
        self.apply_weights(weights)
        return self.describe().split

    def promote(self, release: str, stable: str | None) -> dict[str, int]:
        return self.set_traffic(release, 100, stable)

    def rollback(self, stable: str | None, release: str) -> dict[str, int]:
        releases = self._slot_releases()
        weights = {name: 0 for name in self.slots}
        if stable is not None:
            weights[self._slot_holding(stable, releases)] = 100
        self.apply_weights(weights)
        return self.describe().split

    def cleanup(self, keep: list[str]) -> None:
        weights = self.read_weights()
        for slot_name, slot in self.slots.items():
            current = self.folders.current(slot["root"])
            # A slot without traffic whose release is not kept is emptied; one with traffic is never touched.
            if current is not None and current not in keep and weights.get(slot_name, 0) == 0:
                self.folders.deactivate(slot["root"])
            for name in self.folders.installed(slot["root"]):
                if name not in keep:
                    self.folders.remove(slot["root"], name)

    def preview_url(self, release: str) -> str | None:
        slot = self._slot_holding(release, self._slot_releases())
        return f"http://{self.slots[slot]['address']}{self.settings.get('readiness_path') or '/'}"

    def public_url(self) -> str | None:
        return self.settings.get("public_url")

    # -- helpers ------------------------------------------------------------------------------------

    def _slot_releases(self) -> dict[str, str | None]:
        return {name: self.folders.current(slot["root"]) for name, slot in self.slots.items()}

    def _slot_holding(self, release: str, releases: dict[str, str | None]) -> str:
        for slot, name in releases.items():
            if name == release:
                return slot
        raise AdapterError(f"Release {release!r} is not installed in any slot (slots hold {releases})")

    def _slot_for(self, release: str, stable: str | None, releases: dict[str, str | None]) -> str:
        for slot, name in releases.items():
            if name == release:
                return slot
        free = [slot for slot, name in releases.items() if name is None or name != stable]
        empty = [slot for slot in free if releases[slot] is None]
        if not free:
            raise AdapterError(f"No slot is free for release {release!r}: every slot serves {stable!r}")
        return (empty or free)[0]

    def _run_activate_command(self, slot: str) -> None:
        command = self.settings.get("activate_command")
        if not command:
            return
        # NOTE: the command runs on this machine, even with SSH release folders; make it call ssh itself.
        filled = command.replace("{slot}", slot).replace("{root}", self.slots[slot]["root"])
        result = subprocess.run(["sh", "-c", filled], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise AdapterError(f"The activate command for slot {slot!r} exited with {result.returncode}: "
                               f"{result.stderr.strip()[:500]}")


def _slot_problems(name: object, slot: object) -> list[str]:
    if not isinstance(name, str) or not SLOT_NAME.match(name):
        return [f"Slot name {name!r} is invalid: start with a letter; use letters, digits, '_' and '-'"]
    if not isinstance(slot, dict):
        return [f"Slot {name!r} must be an object with 'address' and 'root'"]
    problems = []
    if not ADDRESS.match(str(slot.get("address") or "")):
        problems.append(f"Slot {name!r} needs an 'address' as host:port, got {slot.get('address')!r}")
    if not str(slot.get("root") or "").startswith("/"):
        problems.append(f"Slot {name!r} needs an absolute 'root' folder, got {slot.get('root')!r}")
    return problems


def _as_percent(split: dict[str, int]) -> dict[str, int]:
    total = sum(split.values())
    if total == 0 or total == 100:
        return split
    # Rounded shares can add up to 99 or 101, so the largest share takes the difference.
    percent = {name: round(weight * 100 / total) for name, weight in split.items()}
    largest = max(percent, key=percent.get)
    percent[largest] += 100 - sum(percent.values())
    return percent
