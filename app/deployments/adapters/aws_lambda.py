"""Traffic weights on an AWS Lambda alias: a published version per release and the alias's routing config.

Callers (API Gateway, a function URL, an event source) invoke the function through one
alias, `live` by default. A release is a published version of the function: `prepare`
uploads the release's zip with UpdateFunctionCode and publishes a version, or takes a
version that is already published. Each release also gets an alias of its own,
`release-<name>` (dots become '_'), whose description "Deno CI release <name>" names the
release exactly; those aliases record which version contains which release, so `describe()`
reads the real state from AWS and keeps none of its own.

Traffic: the live alias points at the stable version and sends a fraction to the new one
through RoutingConfig.AdditionalVersionWeights, whose weights are fractions from 0.0 to
1.0: 10 % is written as 0.1 and read back as round(fraction * 100). Promote points the
alias at the new version with no additional weights; rollback points it back at the
stable one.

Before publishing, the function's description is set to "Deno CI release <name>": Lambda
publishes a new version only when the code or the configuration changed, so without it
two releases with the same code would share one version and could not be told apart.

settings:
  region: "eu-west-1"
  function_name: "web", or the function's unqualified ARN
  alias: the alias callers invoke (default "live"); created by the first deployment if missing
  public_url: optional address that invokes the alias (API Gateway, function URL), for probes
  endpoint_url: optional, for moto or LocalStack
credentials: aws_access_key_id, aws_secret_access_key, aws_session_token (optional)

A release's artifact is a path to a .zip file, an S3 object "s3://bucket/key.zip", a
version number ("7") or the version's qualified ARN ("arn:aws:lambda:...:function:web:7").
"""

import logging
import re
from pathlib import Path

from app.deployments.adapters._aws import ACCOUNT, PARTITION, Aws, poll
from app.deployments.adapters.base import Adapter, AdapterError, Capabilities, InvalidTargetError, TargetState
from app.deployments.adapters.release_folders import check_release_name

log = logging.getLogger(__name__)

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FUNCTION_ARN = re.compile(rf"^arn:(?P<partition>{PARTITION}):lambda:(?P<region>[a-z0-9-]+):(?P<account>{ACCOUNT}):"
                          r"function:(?P<name>[A-Za-z0-9_-]{1,64})$")
VERSION_ARN = re.compile(rf"^arn:{PARTITION}:lambda:(?P<region>[a-z0-9-]+):{ACCOUNT}:"
                         r"function:(?P<name>[A-Za-z0-9_-]{1,64}):(?P<version>[0-9]{1,10})$")
ALIAS_NAME = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$")
S3_OBJECT = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
DESCRIPTION = "Deno CI release "
ALIAS_PREFIX = "release-"
# Lambda takes a zip of at most 50 MB in the request itself; bigger ones go through S3.
MAX_DIRECT_ZIP = 50 * 1024 * 1024
# Seconds to wait for a code or configuration update to finish before the next one.
UPDATE_TIMEOUT = 300
POLL_SECONDS = 1.0


class AwsLambdaAdapter(Adapter):
    """Published versions of one function behind a weighted alias."""

    capabilities = Capabilities(max_live_releases=2, weight_granularity=1, preview_url=False)

    def __init__(self, settings: dict, credentials: dict | None = None) -> None:
        super().__init__(settings, credentials)
        self.aws = Aws(settings, self.credentials)
        self.function = settings.get("function_name")
        self.alias = settings.get("alias") or "live"

    # -- the interface ----------------------------------------------------------------------------

    def validate(self) -> None:
        problems = self.aws.problems()
        name = str(self.function or "")
        arn = FUNCTION_ARN.match(name)
        if not FUNCTION_NAME.match(name) and not arn:
            problems.append(f"Setting 'function_name' must be a function name (letters, digits, '-', '_', up to 64) "
                            f"or its unqualified ARN, got {self.function!r}")
        elif arn and isinstance(self.aws.region, str) and arn["region"] != self.aws.region:
            problems.append(f"Setting 'function_name' is in region {arn['region']!r}, not in the target's region "
                            f"{self.aws.region!r}")
        if not isinstance(self.alias, str) or not ALIAS_NAME.match(self.alias) or self.alias.startswith(ALIAS_PREFIX):
            problems.append(f"Setting 'alias' must be an alias name (letters, digits, '-', '_', not only digits, not "
                            f"starting with {ALIAS_PREFIX!r}), got {self.alias!r}")
        public = self.settings.get("public_url")
        if public is not None and not re.match(r"^https?://\S+$", str(public)):
            problems.append(f"Setting 'public_url' must be an http(s) address, got {public!r}")
        if problems:
            raise InvalidTargetError(problems)

    def describe(self) -> TargetState:
        aliases = self._aliases()
        versions = _release_versions(aliases)
        live = aliases.get(self.alias)
        split = self._split_of(live, versions) if live else {}
        return TargetState(split=split, installed=sorted(versions))

    def prepare(self, release: str, artifact: str, stable: str | None) -> dict[str, int]:
        check_release_name(release)
        source = self._source(artifact)
        aliases = self._aliases()
        alias = _alias_name(release)
        if alias in aliases:
            if aliases[alias].get("Description") != DESCRIPTION + release:
                raise AdapterError(f"Alias {alias!r} of function {self.function} belongs to another release "
                                   f"({aliases[alias].get('Description')!r}); rename release {release!r}")
            return self.describe().split
        if "version" in source:
            version = source["version"]
            self.aws.call("lambda", "get_function_configuration", f"read version {version} of function "
                          f"{self.function}", FunctionName=self.function, Qualifier=version)
        else:
            version = self._publish(release, source)
        holders = [name for name, held in _release_versions(aliases).items() if held == version]
        if holders:
            raise AdapterError(f"Version {version} of function {self.function} already belongs to release "
                               f"{holders[0]!r}, so release {release!r} cannot be told apart from it")
        self.aws.call("lambda", "create_alias", f"create alias {alias} of function {self.function}",
                      FunctionName=self.function, Name=alias, FunctionVersion=version,
                      Description=DESCRIPTION + release)
        log.info("release %s installed as version %s of function %s", release, version, self.function)
        return self.describe().split

    def wait_until_ready(self, release: str, timeout: float) -> None:
        version = self._version_of(release, _release_versions(self._aliases()))

        def active() -> tuple[bool, str]:
            configuration = self._configuration(version)
            state = configuration.get("State") or "Active"
            if state == "Failed":
                raise AdapterError(f"Version {version} of function {self.function} (release {release!r}) failed: "
                                   f"{configuration.get('StateReason') or 'no reason given'}")
            reason = configuration.get("StateReason")
            return state == "Active", f"{state} ({reason})" if reason else state

        ready, state = poll(active, timeout, POLL_SECONDS)
        if not ready:
            raise AdapterError(f"Version {version} of function {self.function} (release {release!r}) is not active "
                               f"after {timeout:g} s: {state}")

    def set_traffic(self, release: str, weight: int, stable: str | None) -> dict[str, int]:
        weight = self.check_weight(weight)
        aliases = self._aliases()
        versions = _release_versions(aliases)
        new = self._version_of(release, versions)
        if stable is None or stable == release:
            if weight != 100:
                raise InvalidTargetError([f"Weight {weight} for {release!r} leaves traffic unserved: there is no "
                                          f"live release to take the other {100 - weight} %"])
            self._point_alias(aliases, new, {})
        else:
            old = self._version_of(stable, versions)
            if weight == 100:
                self._point_alias(aliases, new, {})
            elif weight == 0:
                self._point_alias(aliases, old, {})
            else:
                # Whole percents as fractions: 10 % is 0.1, never 0.1000000001.
                self._point_alias(aliases, old, {new: round(weight / 100, 2)})
        return self.describe().split

    def promote(self, release: str, stable: str | None) -> dict[str, int]:
        return self.set_traffic(release, 100, stable)

    def rollback(self, stable: str | None, release: str) -> dict[str, int]:
        aliases = self._aliases()
        versions = _release_versions(aliases)
        if stable is not None:
            self._point_alias(aliases, self._version_of(stable, versions), {})
            return self.describe().split
        live = aliases.get(self.alias)
        new = versions.get(release)
        if live is None or new is None:
            return self.describe().split
        primary = live.get("FunctionVersion")
        extra = [version for version, weight in _weights(live).items() if weight > 0 and version != new]
        if primary != new:
            self._point_alias(aliases, primary, {})
        elif extra:
            self._point_alias(aliases, extra[0], {})
        else:
            # With no live release there is nothing to send the traffic to: the alias goes.
            self.aws.call("lambda", "delete_alias", f"delete alias {self.alias} of function {self.function}",
                          FunctionName=self.function, Name=self.alias)
        return self.describe().split

    def cleanup(self, keep: list[str]) -> None:
        aliases = self._aliases()
        live = aliases.get(self.alias)
        serving = {live.get("FunctionVersion"), *_weights(live)} if live else set()
        for release, version in _release_versions(aliases).items():
            if release in keep or version in serving:
                continue
            self.aws.call("lambda", "delete_alias", f"delete alias {_alias_name(release)} of function "
                          f"{self.function}", FunctionName=self.function, Name=_alias_name(release))
            others = [alias for name, alias in aliases.items()
                      if name != _alias_name(release) and alias.get("FunctionVersion") == version]
            # Only versions that Deno CI published go, and only when no other alias uses them.
            if not others and self._configuration(version).get("Description") == DESCRIPTION + release:
                self.aws.call("lambda", "delete_function", f"delete version {version} of function {self.function}",
                              FunctionName=self.function, Qualifier=version)
            log.info("release %s (version %s) removed from function %s", release, version, self.function)

    def public_url(self) -> str | None:
        return self.settings.get("public_url")

    # -- AWS ----------------------------------------------------------------------------------------

    def _aliases(self) -> dict[str, dict]:
        aliases, marker = {}, None
        while True:
            params = {"FunctionName": self.function, **({"Marker": marker} if marker else {})}
            answer = self.aws.call("lambda", "list_aliases", f"list the aliases of function {self.function}", **params)
            aliases.update({alias["Name"]: alias for alias in answer.get("Aliases", [])})
            marker = answer.get("NextMarker")
            if not marker:
                return aliases

    def _configuration(self, version: str) -> dict:
        return self.aws.call("lambda", "get_function_configuration", f"read version {version} of function "
                             f"{self.function}", FunctionName=self.function, Qualifier=version)

    def _point_alias(self, aliases: dict[str, dict], version: str, weights: dict[str, float]) -> None:
        what = f"point alias {self.alias} of function {self.function} at version {version}" + (
            f" with {weights}" if weights else "")
        params = {"FunctionName": self.function, "Name": self.alias, "FunctionVersion": version,
                  "RoutingConfig": {"AdditionalVersionWeights": weights}}
        if self.alias in aliases:
            self.aws.call("lambda", "update_alias", what, **params)
        else:
            self.aws.call("lambda", "create_alias", what, **params)
        log.info("Lambda %s:%s -> version %s, additional %s", self.function, self.alias, version, weights)

    def _publish(self, release: str, source: dict) -> str:
        what = f"function {self.function} for release {release!r}"
        if "zip" in source:
            code = {"ZipFile": source["zip"]}
        else:
            code = {"S3Bucket": source["bucket"], "S3Key": source["key"]}
        self._wait_for_update(what)
        updated = self.aws.call("lambda", "update_function_code", f"upload the code of {what}",
                                FunctionName=self.function, **code)
        self._wait_for_update(what)
        self.aws.call("lambda", "update_function_configuration", f"describe {what}", FunctionName=self.function,
                      Description=DESCRIPTION + release)
        self._wait_for_update(what)
        # CodeSha256 makes Lambda refuse to publish if someone changed the code meanwhile.
        published = self.aws.call("lambda", "publish_version", f"publish a version of {what}",
                                  FunctionName=self.function, CodeSha256=updated["CodeSha256"],
                                  Description=DESCRIPTION + release)
        return published["Version"]

    def _wait_for_update(self, what: str) -> None:
        def finished() -> tuple[bool, str]:
            status = self._configuration("$LATEST").get("LastUpdateStatus") or "Successful"
            if status == "Failed":
                raise AdapterError(f"The last update of {what} failed; fix the function and deploy again")
            return status == "Successful", status

        done, status = poll(finished, UPDATE_TIMEOUT, POLL_SECONDS)
        if not done:
            raise AdapterError(f"An update of {what} is still {status} after {UPDATE_TIMEOUT} s")

    # -- helpers ----------------------------------------------------------------------------------

    def _source(self, artifact: str) -> dict:
        """Return {"version"}, {"zip"} or {"bucket", "key"} for a release's artifact; raise before any request."""
        text = str(artifact or "")
        if re.match(r"^[0-9]{1,10}$", text):
            return {"version": text}
        version = VERSION_ARN.match(text)
        if version:
            function = FUNCTION_ARN.match(str(self.function))
            name = function["name"] if function else self.function
            if version["name"] != name or version["region"] != self.aws.region:
                raise InvalidTargetError([f"Artifact {text!r} is a version of another function than {self.function}"])
            return {"version": version["version"]}
        s3_object = S3_OBJECT.match(text)
        if s3_object:
            return {"bucket": s3_object["bucket"], "key": s3_object["key"]}
        if text.endswith(".zip"):
            path = Path(text)
            try:
                size = path.stat().st_size
                if size > MAX_DIRECT_ZIP:
                    raise InvalidTargetError([f"Artifact {text} has {size} bytes, more than Lambda takes directly "
                                              f"({MAX_DIRECT_ZIP}); upload it to S3 and give s3://bucket/key"])
                return {"zip": path.read_bytes()}
            except OSError as error:
                raise AdapterError(f"Cannot read artifact {text}: {error.strerror}") from None
        raise InvalidTargetError([f"Artifact {text!r} is not a Lambda release: give a .zip file, s3://bucket/key, "
                                  f"a published version number or its ARN"])

    def _version_of(self, release: str, versions: dict[str, str]) -> str:
        if release not in versions:
            raise AdapterError(f"Release {release!r} is not a published version of function {self.function} "
                               f"(releases there: {sorted(versions) or 'none'})")
        return versions[release]

    def _split_of(self, live: dict, versions: dict[str, str]) -> dict[str, int]:
        names: dict[str, str] = {}
        for release, version in sorted(versions.items()):
            names.setdefault(version, release)
        split: dict[str, int] = {}
        extra = 0
        for version, weight in _weights(live).items():
            percent = round(weight * 100)
            if percent > 0:
                name = names.get(version, f"version {version}")
                split[name] = split.get(name, 0) + percent
                extra += percent
        primary = live.get("FunctionVersion")
        if extra < 100:
            name = names.get(primary, f"version {primary}")
            split[name] = split.get(name, 0) + 100 - extra
        return split


def _alias_name(release: str) -> str:
    return ALIAS_PREFIX + release.replace(".", "_")


def _release_versions(aliases: dict[str, dict]) -> dict[str, str]:
    """Return {release: version} from the release aliases."""
    versions = {}
    for name, alias in aliases.items():
        description = alias.get("Description") or ""
        if name.startswith(ALIAS_PREFIX) and description.startswith(DESCRIPTION):
            release = description[len(DESCRIPTION):]
            if _alias_name(release) == name:
                versions[release] = alias.get("FunctionVersion")
    return versions


def _weights(alias: dict | None) -> dict[str, float]:
    return dict(((alias or {}).get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})
