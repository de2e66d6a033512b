"""The interface between the deployment engine and a target.

An adapter drives one environment's target: your own servers behind nginx or
HAProxy, a cloud load balancer and so on. The engine calls it from RQ jobs and
may call any method again after a crash, so every method is idempotent: calling
it twice with the same arguments leaves the target as calling it once does.

Traffic is expressed as a split, `{release name: percent}`, whose values add up
to 100. Every method that changes traffic returns the split the target really
serves afterwards (read back from the target where the provider allows it), and
the engine records that split, not the one it asked for.

Every method raises `AdapterError` (or a subclass) when the target rejects a
request or cannot be reached. The message names the action, the target and the
provider's answer, and never contains a credential. After an `AdapterError` the
target serves what it served before the failed call, or the split the error
carries in `applied`.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class AdapterError(Exception):
    """A target rejected a request or could not be reached."""

    def __init__(self, message: str, applied: dict[str, int] | None = None) -> None:
        super().__init__(message)
        # The split the target serves after the failure, when the adapter could read it.
        self.applied = applied


class InvalidTargetError(AdapterError):
    """A target's settings or a requested weight are invalid; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Capabilities:
    """What a target can do, so strategies can be checked before anything changes."""

    # How many releases can serve at the same time (2 for a canary or blue-green beside the live one).
    max_live_releases: int = 2
    # Weights must be multiples of this many percent.
    weight_granularity: int = 1
    # Whether a release can be reached on its own before it gets traffic (blue-green previews).
    preview_url: bool = False


@dataclass
class TargetState:
    """What a target serves right now, as read from the target itself."""

    # {release name: percent}; empty when nothing is deployed.
    split: dict[str, int] = field(default_factory=dict)
    # Releases installed on the target, serving or not.
    installed: list[str] = field(default_factory=list)


class Adapter(ABC):
    """One environment's target. `settings` comes from the environment, `credentials` from its secrets."""

    capabilities = Capabilities()

    def __init__(self, settings: dict, credentials: dict | None = None) -> None:
        self.settings = settings
        self.credentials = credentials or {}

    @abstractmethod
    def validate(self) -> None:
        """Check the settings without touching the target; raise InvalidTargetError listing every problem."""

    @abstractmethod
    def describe(self) -> TargetState:
        """Read what the target serves now. The engine trusts this over its own records after a restart."""

    @abstractmethod
    def prepare(self, release: str, artifact: str, stable: str | None) -> dict[str, int]:
        """Install `release` beside `stable` (the live release, if any) with 0 % of the traffic.

        With no live release the new one is installed and the split is empty until traffic is set.
        """

    @abstractmethod
    def wait_until_ready(self, release: str, timeout: float) -> None:
        """Return once `release` answers; raise AdapterError after `timeout` seconds."""

    @abstractmethod
    def set_traffic(self, release: str, weight: int, stable: str | None) -> dict[str, int]:
        """Give `release` `weight` percent and `stable` the rest; return the split applied."""

    @abstractmethod
    def promote(self, release: str, stable: str | None) -> dict[str, int]:
        """Give `release` all the traffic and keep `stable` installed (for a quick rollback); return the split."""

    @abstractmethod
    def rollback(self, stable: str | None, release: str) -> dict[str, int]:
        """Give `stable` all the traffic again (or take `release` out when there is no stable); return the split."""

    @abstractmethod
    def cleanup(self, keep: list[str]) -> None:
        """Remove every installed release not in `keep`."""

    def preview_url(self, release: str) -> str | None:
        """Return an address that reaches `release` alone, when the capabilities say there is one."""
        return None

    def public_url(self) -> str | None:
        """Return the address that users reach, where probes measure the split traffic."""
        return None

    def check_weight(self, weight: object) -> int:
        """Return `weight` as an int; raise InvalidTargetError unless it is 0-100 and fits the granularity."""
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise InvalidTargetError([f"Weight must be a whole percent from 0 to 100, got {weight!r}"])
        step = self.capabilities.weight_granularity
        if weight % step:
            raise InvalidTargetError([f"Weight {weight} is not a multiple of {step}, the target's granularity"])
        return weight


def split_of(release: str, weight: int, stable: str | None) -> dict[str, int]:
    """Return the split that gives `release` `weight` percent and `stable` the rest."""
    if stable is None or stable == release:
        return {release: 100}
    return {name: percent for name, percent in ((stable, 100 - weight), (release, weight)) if percent}
