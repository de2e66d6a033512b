"""Traffic weights on an AWS Application Load Balancer: a forward action with weighted target groups.

Releases map to a fixed set of target groups named in the settings, usually a blue and
a green one, as CodeDeploy's blue/green, Argo Rollouts and Flagger do on ALB. Each
target group is backed by its own compute (an Auto Scaling group, an ECS service,
instances) that the operator runs. A new release goes into a target group that the
live release does not use: `install_command` puts it on that compute, and the adapter
then tags the target group `deno-ci:release=<name>`. The tags record which release each
target group contains, and the listener's forward action gives its weight, so `describe()`
reads the real state from AWS and keeps none of its own.

The forward action (of the listener's default actions, or of one listener rule) is
owned by Deno CI: every change writes exactly the configured target groups with their
weights, keeping the action's stickiness and the other actions (authentication) as
they are. ALB weights are integers from 0 to 999; the adapter writes the percent as
the weight (so the console shows 90 and 10) and reads any weights back as percents of
their sum.

settings:
  region: "eu-west-1"
  listener_arn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/<lb id>/<listener id>"
  rule_arn: optional, a rule of that listener whose forward action to use instead of the default action
  target_groups: {"blue": "arn:aws:elasticloadbalancing:...:targetgroup/web-blue/<id>", "green": "..."} (2 to 5)
  install_command: optional shell command run here to put a release on a target group's compute;
                   {release}, {artifact}, {slot}, {target_group_arn} and {region} are replaced (quoted),
                   and the environment's AWS keys are in its environment as AWS_ACCESS_KEY_ID and so on
  min_healthy_targets: healthy targets a release's target group needs before traffic (default 1)
  preview_listener_arn, preview_url: optional test listener (say port 8443) that forwards to the newest
                   release alone, and the address that reaches it, for blue-green preview analysis
  public_url: optional address of the load balancer, for probes of the split traffic
  endpoint_url: optional, for moto or LocalStack
credentials: aws_access_key_id, aws_secret_access_key, aws_session_token (optional)
"""

import logging
import os
import re
import shlex
import subprocess

from app.deployments.adapters._aws import ACCOUNT, PARTITION, Aws, as_percent, poll
from app.deployments.adapters.base import Adapter, AdapterError, Capabilities, InvalidTargetError, TargetState
from app.deployments.adapters.release_folders import check_release_name

log = logging.getLogger(__name__)

LISTENER_ARN = re.compile(rf"^arn:(?P<partition>{PARTITION}):elasticloadbalancing:(?P<region>[a-z0-9-]+):"
                          rf"(?P<account>{ACCOUNT}):listener/app/(?P<path>[A-Za-z0-9-]{{1,32}}/[0-9a-f]{{16}}/"
                          r"[0-9a-f]{16})$")
RULE_ARN = re.compile(rf"^arn:(?P<partition>{PARTITION}):elasticloadbalancing:(?P<region>[a-z0-9-]+):"
                      rf"(?P<account>{ACCOUNT}):listener-rule/app/(?P<path>[A-Za-z0-9-]{{1,32}}/[0-9a-f]{{16}}/"
                      r"[0-9a-f]{16})/[0-9a-f]{16}$")
TARGET_GROUP_ARN = re.compile(rf"^arn:(?P<partition>{PARTITION}):elasticloadbalancing:(?P<region>[a-z0-9-]+):"
                              rf"(?P<account>{ACCOUNT}):targetgroup/(?P<name>[A-Za-z0-9-]{{1,32}})/[0-9a-f]{{16}}$")
SLOT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
RELEASE_TAG = "deno-ci:release"
# ALB takes at most five target groups in one forward action.
MAX_TARGET_GROUPS = 5
# Seconds between target health checks while waiting for a release.
HEALTH_POLL_SECONDS = 1.0
INSTALL_TIMEOUT = 1800


class AwsAlbAdapter(Adapter):
    """Target groups behind an ALB listener, weighted in its forward action."""

    def __init__(self, settings: dict, credentials: dict | None = None) -> None:
        super().__init__(settings, credentials)
        self.aws = Aws(settings, self.credentials)
        self.groups: dict = settings.get("target_groups") or {}
        self.listener_arn = settings.get("listener_arn")
        self.rule_arn = settings.get("rule_arn") or None
        self.capabilities = Capabilities(max_live_releases=2, weight_granularity=1, preview_url=bool(
            settings.get("preview_listener_arn") and settings.get("preview_url")))

    # -- the interface ----------------------------------------------------------------------------

    def validate(self) -> None:
        problems = self.aws.problems()
        listener = LISTENER_ARN.match(str(self.listener_arn or ""))
        if not listener:
            problems.append(f"Setting 'listener_arn' must be an ALB listener ARN (arn:aws:elasticloadbalancing:"
                            f"<region>:<account>:listener/app/<name>/<id>/<id>), got {self.listener_arn!r}")
        else:
            problems += _same_place("listener_arn", listener, self.aws.region, None)
        if self.rule_arn is not None:
            rule = RULE_ARN.match(str(self.rule_arn))
            if not rule:
                problems.append(f"Setting 'rule_arn' must be an ALB listener rule ARN (arn:aws:elasticloadbalancing:"
                                f"<region>:<account>:listener-rule/app/<name>/<id>/<id>/<id>), got {self.rule_arn!r}")
            elif listener and rule["path"] != listener["path"]:
                problems.append("Setting 'rule_arn' must name a rule of the listener in 'listener_arn'")
        problems += self._target_group_problems(listener)
        preview = self.settings.get("preview_listener_arn")
        if preview is not None:
            match = LISTENER_ARN.match(str(preview))
            if not match:
                problems.append(f"Setting 'preview_listener_arn' must be an ALB listener ARN, got {preview!r}")
            elif preview == self.listener_arn:
                problems.append("Setting 'preview_listener_arn' must be another listener than 'listener_arn'")
            else:
                problems += _same_place("preview_listener_arn", match, self.aws.region, listener)
        for key in ("preview_url", "public_url"):
            value = self.settings.get(key)
            if value is not None and not re.match(r"^https?://\S+$", str(value)):
                problems.append(f"Setting {key!r} must be an http(s) address, got {value!r}")
        command = self.settings.get("install_command")
        if command is not None and (not isinstance(command, str) or not command.strip()):
            problems.append("Setting 'install_command' must be a shell command")
        healthy = self.settings.get("min_healthy_targets", 1)
        if isinstance(healthy, bool) or not isinstance(healthy, int) or healthy < 1:
            problems.append(f"Setting 'min_healthy_targets' must be a whole number from 1, got {healthy!r}")
        if problems:
            raise InvalidTargetError(problems)

    def describe(self) -> TargetState:
        weights = self._read_weights()
        releases = self._group_releases()
        split: dict[str, float] = {}
        for key, weight in weights.items():
            name = releases.get(key) or (f"target group {_group_name(key)}" if key.startswith("arn:")
                                         else f"target group {_group_name(self.groups[key])}")
            split[name] = split.get(name, 0) + weight
        installed = sorted({name for name in releases.values() if name})
        return TargetState(split=as_percent(split), installed=installed)

    def prepare(self, release: str, artifact: str, stable: str | None) -> dict[str, int]:
        check_release_name(release)
        releases = self._group_releases()
        weights = self._read_weights()
        slot = self._slot_for(release, stable, releases, weights)
        if releases.get(slot) != release:
            if weights.get(slot, 0) > 0:
                # A canary left by an interrupted deployment: the live release takes its share back first.
                live = [name for name, held in releases.items() if held == stable and name != slot]
                self._write_weights({name: 100 if name in live[:1] else 0 for name in self.groups} if live else
                                    {name: (0 if name == slot else weights.get(name, 0)) for name in self.groups})
            if releases.get(slot) is not None:
                self._untag(slot)
            self._run_install_command(slot, release, artifact)
            self.aws.call("elbv2", "add_tags", f"tag target group {self.groups[slot]} with release {release!r}",
                          ResourceArns=[self.groups[slot]], Tags=[{"Key": RELEASE_TAG, "Value": release}])
            log.info("release %s installed in target group %s (%s)", release, slot, self.groups[slot])
        if self.capabilities.preview_url:
            self._forward_preview(slot)
        return self.describe().split

    def wait_until_ready(self, release: str, timeout: float) -> None:
        slot = self._slot_holding(release, self._group_releases())
        arn, needed = self.groups[slot], self.settings.get("min_healthy_targets", 1)

        def healthy() -> tuple[bool, str]:
            answer = self.aws.call("elbv2", "describe_target_health", f"read the target health of {arn}",
                                   TargetGroupArn=arn)
            states: dict[str, int] = {}
            for description in answer.get("TargetHealthDescriptions", []):
                health = description.get("TargetHealth", {})
                state = health.get("State", "unknown")
                label = f"{state} ({health['Reason']})" if health.get("Reason") else state
                states[label] = states.get(label, 0) + 1
            count = sum(number for label, number in states.items() if label == "healthy")
            summary = ", ".join(f"{number} {label}" for label, number in sorted(states.items())) or "no targets"
            return count >= needed, summary

        ready, summary = poll(healthy, timeout, HEALTH_POLL_SECONDS)
        if not ready:
            raise AdapterError(f"Target group {_group_name(arn)} of release {release!r} has fewer than {needed} "
                               f"healthy target(s) after {timeout:g} s: {summary}")

    def set_traffic(self, release: str, weight: int, stable: str | None) -> dict[str, int]:
        weight = self.check_weight(weight)
        releases = self._group_releases()
        weights = {name: 0 for name in self.groups}
        weights[self._slot_holding(release, releases)] = weight
        if stable is not None and stable != release:
            weights[self._slot_holding(stable, releases)] = 100 - weight
        elif weight != 100:
            raise InvalidTargetError([f"Weight {weight} for {release!r} leaves traffic unserved: there is no "
                                      f"live release to take the other {100 - weight} %"])
        self._write_weights(weights)
        return self.describe().split

    def promote(self, release: str, stable: str | None) -> dict[str, int]:
        return self.set_traffic(release, 100, stable)

    def rollback(self, stable: str | None, release: str) -> dict[str, int]:
        weights = {name: 0 for name in self.groups}
        if stable is not None:
            weights[self._slot_holding(stable, self._group_releases())] = 100
        self._write_weights(weights)
        return self.describe().split

    def cleanup(self, keep: list[str]) -> None:
        weights = self._read_weights()
        for slot, release in self._group_releases().items():
            # A target group with traffic is never emptied, whatever it holds.
            if release is not None and release not in keep and weights.get(slot, 0) == 0:
                self._untag(slot)
                log.info("release %s removed from target group %s", release, slot)

    def preview_url(self, release: str) -> str | None:
        return self.settings.get("preview_url") if self.capabilities.preview_url else None

    def public_url(self) -> str | None:
        return self.settings.get("public_url")

    # -- reading and writing the load balancer ---------------------------------------------------

    def _actions(self) -> list[dict]:
        if self.rule_arn:
            rules = self.aws.call("elbv2", "describe_rules", f"read listener rule {self.rule_arn}",
                                  RuleArns=[self.rule_arn]).get("Rules") or []
            if not rules:
                raise AdapterError(f"Listener rule {self.rule_arn} does not exist")
            return rules[0].get("Actions") or []
        listeners = self.aws.call("elbv2", "describe_listeners", f"read listener {self.listener_arn}",
                                  ListenerArns=[self.listener_arn]).get("Listeners") or []
        if not listeners:
            raise AdapterError(f"Listener {self.listener_arn} does not exist")
        return listeners[0].get("DefaultActions") or []

    def _where(self) -> str:
        return f"listener rule {self.rule_arn}" if self.rule_arn else f"listener {self.listener_arn}"

    def _forward(self, actions: list[dict]) -> dict:
        forwards = [action for action in actions if action.get("Type") == "forward"]
        if len(forwards) != 1:
            kinds = ", ".join(action.get("Type", "?") for action in actions) or "none"
            raise AdapterError(f"The actions of {self._where()} must end in one forward action to weight target "
                               f"groups in; they are: {kinds}")
        return forwards[0]

    def _read_weights(self) -> dict[str, int]:
        """Return {slot: weight} for the configured target groups, and {arn: weight} for any other one."""
        forward = self._forward(self._actions())
        groups = (forward.get("ForwardConfig") or {}).get("TargetGroups") or []
        if not groups and forward.get("TargetGroupArn"):
            groups = [{"TargetGroupArn": forward["TargetGroupArn"], "Weight": 1}]
        slot_of = {arn: slot for slot, arn in self.groups.items()}
        weights = {slot: 0 for slot in self.groups}
        for group in groups:
            key = slot_of.get(group["TargetGroupArn"], group["TargetGroupArn"])
            weights[key] = weights.get(key, 0) + int(group.get("Weight", 1))
        return weights

    def _write_weights(self, weights: dict[str, int]) -> None:
        """Give each configured target group its weight (percent) in the forward action, and no other group any."""
        actions = self._actions()
        forward = self._forward(actions)
        config = {"TargetGroups": [{"TargetGroupArn": arn, "Weight": int(weights.get(slot, 0))}
                                   for slot, arn in self.groups.items()]}
        stickiness = (forward.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig")
        if stickiness:
            config["TargetGroupStickinessConfig"] = stickiness
        new_forward = {"Type": "forward", "ForwardConfig": config}
        if "Order" in forward:
            new_forward["Order"] = forward["Order"]
        written = [new_forward if action is forward else _writable(action) for action in actions]
        what = f"set the weights {weights} on {self._where()}"
        if self.rule_arn:
            self.aws.call("elbv2", "modify_rule", what, RuleArn=self.rule_arn, Actions=written)
        else:
            self.aws.call("elbv2", "modify_listener", what, ListenerArn=self.listener_arn, DefaultActions=written)
        log.info("ALB %s: weights %s", self._where(), weights)

    def _forward_preview(self, slot: str) -> None:
        arn = self.settings["preview_listener_arn"]
        listeners = self.aws.call("elbv2", "describe_listeners", f"read preview listener {arn}",
                                  ListenerArns=[arn]).get("Listeners") or []
        actions = listeners[0].get("DefaultActions") if listeners else []
        forward = {"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": self.groups[slot], "Weight": 1}]}}
        others = [_writable(action) for action in actions or [] if action.get("Type") != "forward"]
        order = [action.get("Order") for action in actions or [] if action.get("Type") == "forward"]
        if order and order[0] is not None:
            forward["Order"] = order[0]
        self.aws.call("elbv2", "modify_listener", f"forward preview listener {arn} to target group {slot}",
                      ListenerArn=arn, DefaultActions=others + [forward])

    def _group_releases(self) -> dict[str, str | None]:
        """Return {slot: release} from the target groups' `deno-ci:release` tags."""
        answer = self.aws.call("elbv2", "describe_tags", "read the tags of target groups "
                               + ", ".join(self.groups.values()), ResourceArns=list(self.groups.values()))
        tags = {description["ResourceArn"]: {tag["Key"]: tag.get("Value") for tag in description.get("Tags", [])}
                for description in answer.get("TagDescriptions", [])}
        return {slot: tags.get(arn, {}).get(RELEASE_TAG) or None for slot, arn in self.groups.items()}

    def _untag(self, slot: str) -> None:
        self.aws.call("elbv2", "remove_tags", f"remove the release tag of target group {self.groups[slot]}",
                      ResourceArns=[self.groups[slot]], TagKeys=[RELEASE_TAG])

    # -- helpers ----------------------------------------------------------------------------------

    def _target_group_problems(self, listener) -> list[str]:
        if not isinstance(self.groups, dict) or not 2 <= len(self.groups) <= MAX_TARGET_GROUPS:
            return [f"Setting 'target_groups' needs 2 to {MAX_TARGET_GROUPS} target groups as {{name: ARN}}, "
                    f"such as {{'blue': 'arn:...', 'green': 'arn:...'}}"]
        problems = []
        for slot, arn in self.groups.items():
            match = TARGET_GROUP_ARN.match(str(arn or ""))
            if not isinstance(slot, str) or not SLOT_NAME.match(slot):
                problems.append(f"Target group name {slot!r} is invalid: start with a letter; use letters, digits, "
                                f"'_' and '-'")
            elif not match:
                problems.append(f"Target group {slot!r} needs a target group ARN (arn:aws:elasticloadbalancing:"
                                f"<region>:<account>:targetgroup/<name>/<id>), got {arn!r}")
            else:
                problems += _same_place(f"target_groups.{slot}", match, self.aws.region, listener)
        if len(set(map(str, self.groups.values()))) != len(self.groups):
            problems.append("Setting 'target_groups' names the same target group twice")
        return problems

    def _slot_holding(self, release: str, releases: dict[str, str | None]) -> str:
        for slot, name in releases.items():
            if name == release:
                return slot
        raise AdapterError(f"Release {release!r} is in no target group (they hold {releases})")

    def _slot_for(self, release: str, stable: str | None, releases: dict[str, str | None],
                  weights: dict[str, int]) -> str:
        for slot, name in releases.items():
            if name == release:
                return slot
        free = [slot for slot in self.groups if stable is None or releases[slot] != stable]
        # An idle target group first, an untagged one before one holding an old release; one that serves
        # traffic only beside a live release, which then takes its share.
        idle = sorted((slot for slot in free if weights.get(slot, 0) == 0), key=lambda slot: releases[slot] is not None)
        if idle:
            return idle[0]
        if stable is not None and free:
            return free[0]
        raise AdapterError(f"No target group is free for release {release!r}: each one serves traffic or holds "
                           f"the live release {stable!r} (weights {weights}, releases {releases})")

    def _run_install_command(self, slot: str, release: str, artifact: str) -> None:
        command = self.settings.get("install_command")
        if not command:
            return
        values = {"release": release, "artifact": artifact or "", "slot": slot,
                  "target_group_arn": self.groups[slot], "region": self.aws.region}
        filled = command
        for key, value in values.items():
            filled = filled.replace("{" + key + "}", shlex.quote(value))
        # Only what the command needs: not the platform's own environment (its database, its secret key).
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
                       "LANG": os.environ.get("LANG", "C.UTF-8"), **self.aws.environment(),
                       "DENO_CI_RELEASE": release, "DENO_CI_ARTIFACT": artifact or "", "DENO_CI_SLOT": slot,
                       "DENO_CI_TARGET_GROUP_ARN": self.groups[slot]}
        try:
            result = subprocess.run(["sh", "-c", filled], capture_output=True, text=True, env=environment,
                                    timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise AdapterError(self.aws.redact(f"The install command for target group {slot!r} failed: {error}")) \
                from None
        if result.returncode != 0:
            raise AdapterError(self.aws.redact(f"The install command for target group {slot!r} exited with "
                                               f"{result.returncode}: {result.stderr.strip()[-500:]}"))


def _same_place(key: str, match: re.Match, region: object, listener: re.Match | None) -> list[str]:
    """Problems when an ARN's region differs from the setting's, or its account or partition from the listener's."""
    problems = []
    if isinstance(region, str) and match["region"] != region:
        problems.append(f"Setting {key!r} is in region {match['region']!r}, not in the target's region {region!r}")
    if listener is not None and (match["account"], match["partition"]) != (listener["account"],
                                                                           listener["partition"]):
        problems.append(f"Setting {key!r} is in another AWS account than the listener")
    return problems


def _group_name(arn: str) -> str:
    match = TARGET_GROUP_ARN.match(arn)
    return match["name"] if match else arn


def _writable(action: dict) -> dict:
    """Return an action as read from AWS in the form AWS accepts back."""
    action = {key: value for key, value in action.items() if value is not None}
    oidc = action.get("AuthenticateOidcConfig")
    if oidc is not None and "ClientSecret" not in oidc:
        # AWS never returns the client secret, and keeps the stored one only when the request asks for it.
        action["AuthenticateOidcConfig"] = {**oidc, "UseExistingClientSecret": True}
    return action
