"""Google Cloud Run: a release is a revision of one service, and the service's traffic list splits it.

prepare() changes the service template (the new image and a revision name) and lists
the new revision in the traffic at 0 % with a tag, so it gets its own URL for previews.
set_traffic() rewrites the percents of the revision entries, and describe() reads the
split back from the service's traffic statuses. Every entry this adapter writes names a
revision (TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION), never "latest", so a new revision
gets no traffic until it is asked to.

Revision names allow only lowercase letters, digits and '-', so a release name is turned
into a revision name, and the service annotation `deno-ci.dev/releases` keeps the map
{revision: release} for reading the split back.

The service must exist: Cloud Run needs every service to send 100 % of its traffic
somewhere, so a first release is installed beside whatever the service runs.

settings:
  project: the Google Cloud project id
  region: the service's region, like europe-west4
  service: the Cloud Run service name
  endpoint: optional API address (default https://run.googleapis.com)
  operation_timeout: seconds to wait for a traffic change (default 300)
  poll_interval: seconds between reads of an operation or revision in progress (default 1)
  public_url: optional address users reach; default the service's URL
credentials (environment secrets):
  service_account_json: a service-account key (the JSON text or object), or access_token alone
"""

import hashlib
import json
import logging
import re
import time

import requests
from google.api_core import exceptions as google_exceptions
from google.auth import exceptions as auth_exceptions

from app.deployments.adapters._cloud import number_problems, redact
from app.deployments.adapters.base import Adapter, AdapterError, Capabilities, InvalidTargetError, TargetState
from app.deployments.adapters.release_folders import check_release_name

log = logging.getLogger(__name__)

RELEASES_ANNOTATION = "deno-ci.dev/releases"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# Project ids: 6-30 lowercase letters, digits or '-', starting with a letter (optionally "domain:" first).
PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
REGION = re.compile(r"^[a-z]+(?:-[a-z]+)+[0-9]{1,2}$")
# Cloud Run service names are shorter than 50 characters; revision names at most 63.
SERVICE_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,47}[a-z0-9])?$")
MAX_REVISION_NAME = 63
IMAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+"
                   r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")
REQUEST_TIMEOUT = 30.0


class CloudRunAdapter(Adapter):
    """One Cloud Run service whose revisions are the releases."""

    # Cloud Run takes whole percents and splits between any number of revisions; a canary uses two.
    capabilities = Capabilities(max_live_releases=2, weight_granularity=1, preview_url=True)

    def __init__(self, settings: dict, credentials: dict | None = None) -> None:
        super().__init__(settings, credentials)
        self.project = settings.get("project")
        self.region = settings.get("region")
        self.service = settings.get("service")
        self.endpoint = settings.get("endpoint")
        self._services = None
        self._revisions = None

    # -- settings ---------------------------------------------------------------------------------

    def validate(self) -> None:
        problems = []
        if not PROJECT_ID.match(str(self.project or "")):
            problems.append(f"Setting 'project' must be a project id of 6-30 lowercase letters, digits or '-' "
                            f"starting with a letter, got {self.project!r}")
        if not REGION.match(str(self.region or "")):
            problems.append(f"Setting 'region' must be a Cloud Run region like 'europe-west4', got {self.region!r}")
        if not SERVICE_NAME.match(str(self.service or "")):
            problems.append(f"Setting 'service' must be 1-49 lowercase letters, digits or '-', starting with a "
                            f"letter and not ending with '-', got {self.service!r}")
        if self.endpoint is not None and not re.match(r"^https?://[^/\s]+$", str(self.endpoint)):
            problems.append(f"Setting 'endpoint' must be an http(s):// address with no path, got {self.endpoint!r}")
        problems.extend(number_problems(self.settings, {"operation_timeout": (1, 3600), "poll_interval": (0.01, 60)}))
        problems.extend(self._credential_problems())
        if problems:
            raise InvalidTargetError(problems)

    def _credential_problems(self) -> list[str]:
        if self.credentials.get("access_token"):
            return []
        key = self.credentials.get("service_account_json")
        if not key:
            return ["The environment's credentials need 'service_account_json' (a service-account key) "
                    "or an 'access_token'"]
        try:
            info = json.loads(key) if isinstance(key, str) else key
        except ValueError:
            return ["Credential 'service_account_json' is not valid JSON: paste the whole key file"]
        if not isinstance(info, dict) or info.get("type") != "service_account":
            return ["Credential 'service_account_json' is not a service-account key (its 'type' must be "
                    "'service_account')"]
        return []

    @property
    def service_path(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{self.service}"

    @property
    def target_name(self) -> str:
        return f"Cloud Run service {self.service!r} in {self.project}/{self.region}"

    # -- the interface ----------------------------------------------------------------------------

    def describe(self) -> TargetState:
        service = self._get_service()
        releases = _releases_of(service)
        split: dict[str, int] = {}
        for status in service.traffic_statuses:
            release = releases.get(status.revision)
            if release is not None and status.percent > 0:
                split[release] = split.get(release, 0) + status.percent
        return TargetState(split=split, installed=sorted(set(releases.values())))

    def prepare(self, release: str, artifact: str, stable: str | None) -> dict[str, int]:
        from google.cloud.run_v2 import TrafficTarget, TrafficTargetAllocationType

        check_release_name(release)
        _check_image(artifact)
        revision = self.revision_name(release)
        service = self._get_service()
        if any(target.revision == revision for target in service.traffic):
            return self.describe().split
        traffic = self._pinned_traffic(service)
        traffic.append(TrafficTarget(type_=TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
                                     revision=revision, percent=0, tag=tag_of(revision, self.service)))
        if service.template.revision != revision:
            service.template.revision = revision
            if not service.template.containers:
                service.template.containers.append({})
            service.template.containers[0].image = artifact
        releases = _releases_of(service)
        releases[revision] = release
        service.annotations[RELEASES_ANNOTATION] = json.dumps(releases, sort_keys=True)
        service.traffic.clear()
        service.traffic.extend(traffic)
        # The operation ends when the revision is ready, which wait_until_ready() watches with its own timeout.
        self._call("update the service", self.services.update_service, service=service, timeout=REQUEST_TIMEOUT)
        log.info("cloud run %s: release %s installed as revision %s", self.service, release, revision)
        return self.describe().split

    def wait_until_ready(self, release: str, timeout: float) -> None:
        name = f"{self.service_path}/revisions/{self.revision_name(release)}"
        deadline = time.monotonic() + timeout
        state = "not created yet"
        while True:
            try:
                revision = self._call("read the revision", self.revisions.get_revision, name=name,
                                      timeout=REQUEST_TIMEOUT, missing_ok=True)
            except _Missing:
                revision = None
            if revision is not None:
                ready = next((condition for condition in revision.conditions if condition.type_ == "Ready"), None)
                state = ready.state.name if ready else "no Ready condition"
                if ready is not None and ready.state.name == "CONDITION_SUCCEEDED" and not revision.reconciling:
                    return
                if ready is not None and ready.state.name == "CONDITION_FAILED":
                    raise AdapterError(f"Revision {name.rsplit('/', 1)[-1]!r} of {self.target_name} failed: "
                                       f"{ready.message or ready.reason}")
            if time.monotonic() >= deadline:
                break
            time.sleep(float(self.settings.get("poll_interval") or 1.0))
        raise AdapterError(f"Release {release!r} (revision {name.rsplit('/', 1)[-1]!r}) of {self.target_name} was "
                           f"not ready within {timeout:g} s ({state})")

    def set_traffic(self, release: str, weight: int, stable: str | None) -> dict[str, int]:
        weight = self.check_weight(weight)
        if (stable is None or stable == release) and weight != 100:
            raise InvalidTargetError([f"Weight {weight} for {release!r} leaves traffic unserved: there is no "
                                      f"live release to take the other {100 - weight} %"])
        percents = {self._installed_revision(release): weight}
        if stable is not None and stable != release:
            percents[self._installed_revision(stable)] = 100 - weight
        return self._write_percents(percents)

    def promote(self, release: str, stable: str | None) -> dict[str, int]:
        return self.set_traffic(release, 100, stable)

    def rollback(self, stable: str | None, release: str) -> dict[str, int]:
        if stable is not None and stable != release:
            return self._write_percents({self._installed_revision(stable): 100})
        # With no live release, the traffic goes back to a revision that Deno CI did not install, if any.
        service = self._get_service()
        ours = set(_releases_of(service))
        others = [target.revision for target in self._pinned_traffic(service) if target.revision not in ours]
        if not others:
            raise AdapterError(f"Cannot take release {release!r} out of {self.target_name}: Cloud Run needs 100 % "
                               f"of the traffic on some revision, and no other revision is listed")
        return self._write_percents({others[0]: 100})

    def cleanup(self, keep: list[str]) -> None:
        service = self._get_service()
        releases = _releases_of(service)
        serving = {status.revision for status in service.traffic_statuses if status.percent > 0}
        doomed = [revision for revision, release in releases.items()
                  if release not in keep and revision not in serving]
        if not doomed:
            return
        kept = [target for target in service.traffic if target.revision not in doomed]
        service.traffic.clear()
        service.traffic.extend(kept)
        service.annotations[RELEASES_ANNOTATION] = json.dumps(
            {revision: release for revision, release in releases.items() if revision not in doomed}, sort_keys=True)
        self._update_and_wait(service, "remove old revisions from the traffic list")
        for revision in doomed:
            # Cloud Run keeps the revision the template names; it goes once a newer revision replaces it.
            if revision == service.template.revision:
                continue
            self._delete_revision(revision)
        log.info("cloud run %s: removed revisions %s", self.service, doomed)

    def preview_url(self, release: str) -> str | None:
        revision = self.revision_name(release)
        for status in self._get_service().traffic_statuses:
            if status.revision == revision and status.uri:
                return status.uri
        return None

    def public_url(self) -> str | None:
        return self.settings.get("public_url") or self._get_service().uri or None

    # -- names ------------------------------------------------------------------------------------

    def revision_name(self, release: str) -> str:
        """Return the revision name for `release`: `<service>-<release>`, made valid and unique."""
        slug = re.sub(r"[^a-z0-9-]+", "-", release.lower()).strip("-") or "release"
        room = MAX_REVISION_NAME - len(self.service) - 1
        if slug == release and len(slug) <= room:
            return f"{self.service}-{slug}"
        # A changed or shortened name gets a hash of the release name, so "v1.2" and "v1-2" stay apart.
        digest = hashlib.sha256(release.encode()).hexdigest()[:8]
        return f"{self.service}-{slug[:room - 9].strip('-')}-{digest}"

    def _installed_revision(self, release: str) -> str:
        service = self._get_service()
        revision = self.revision_name(release)
        if revision not in _releases_of(service):
            raise AdapterError(f"Release {release!r} is not installed on {self.target_name}: no revision "
                               f"{revision!r} is listed; prepare it first")
        return revision

    # -- writing ----------------------------------------------------------------------------------

    def _pinned_traffic(self, service) -> list:
        """Return the service's traffic as entries that each name a revision, keeping tags and percents."""
        from google.cloud.run_v2 import TrafficTarget, TrafficTargetAllocationType

        revision_type = TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
        entries, seen = [], set()
        for status in service.traffic_statuses or service.traffic:
            revision = status.revision
            if not revision and status.type_ == TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST:
                revision = service.latest_ready_revision.rsplit("/", 1)[-1]
            if not revision or (revision, status.tag) in seen:
                continue
            seen.add((revision, status.tag))
            entries.append(TrafficTarget(type_=revision_type, revision=revision, percent=status.percent,
                                         tag=status.tag))
        return entries

    def _write_percents(self, percents: dict[str, int]) -> dict[str, int]:
        service = self._get_service()
        traffic = self._pinned_traffic(service)
        listed = {target.revision for target in traffic}
        for revision in percents:
            if revision not in listed:
                from google.cloud.run_v2 import TrafficTarget, TrafficTargetAllocationType

                traffic.append(TrafficTarget(
                    type_=TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION, revision=revision))
        for target in traffic:
            target.percent = percents.get(target.revision, 0)
        # An entry with no traffic and no tag does nothing, so it is dropped.
        # NOTE: that Cloud Run rejects such entries is assumed (the fake server does); it was not checked live.
        kept = [target for target in traffic if target.percent > 0 or target.tag]
        service.traffic.clear()
        service.traffic.extend(kept)
        self._update_and_wait(service, "set the traffic split")
        log.info("cloud run %s: traffic %s", self.service, percents)
        return self.describe().split

    def _update_and_wait(self, service, action: str) -> None:
        operation = self._call(action, self.services.update_service, service=service, timeout=REQUEST_TIMEOUT)
        self._wait(action, operation)

    def _wait(self, action: str, operation) -> None:
        from google.api_core.future import polling

        timeout = float(self.settings.get("operation_timeout") or 300)
        interval = float(self.settings.get("poll_interval") or 1.0)
        retry = polling.DEFAULT_POLLING.with_delay(initial=interval, maximum=max(interval, 10.0)).with_timeout(timeout)
        self._call(action, operation.result, timeout=timeout, polling=retry)

    def _delete_revision(self, revision: str) -> None:
        name = f"{self.service_path}/revisions/{revision}"
        try:
            operation = self._call("delete a revision", self.revisions.delete_revision, name=name,
                                   timeout=REQUEST_TIMEOUT, missing_ok=True)
        except _Missing:
            return
        self._wait("delete a revision", operation)

    # -- the SDK ------------------------------------------------------------------------------------

    def _get_service(self):
        return self._call("read the service", self.services.get_service, name=self.service_path,
                          timeout=REQUEST_TIMEOUT)

    @property
    def services(self):
        if self._services is None:
            from google.cloud.run_v2 import ServicesClient

            self._services = ServicesClient(**self._client_arguments())
        return self._services

    @property
    def revisions(self):
        if self._revisions is None:
            from google.cloud.run_v2 import RevisionsClient

            self._revisions = RevisionsClient(**self._client_arguments())
        return self._revisions

    def _client_arguments(self) -> dict:
        arguments = {"credentials": self._credentials(), "transport": "rest"}
        if self.endpoint:
            arguments["client_options"] = {"api_endpoint": self.endpoint}
        return arguments

    def _credentials(self):
        if self.credentials.get("access_token"):
            from google.oauth2.credentials import Credentials

            return Credentials(token=self.credentials["access_token"])
        from google.oauth2 import service_account

        key = self.credentials["service_account_json"]
        info = json.loads(key) if isinstance(key, str) else key
        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)

    def _call(self, action: str, function, *arguments, missing_ok: bool = False, **keywords):
        """Run one SDK call; turn its failure into an AdapterError naming the action, never a credential."""
        try:
            return function(*arguments, **keywords)
        except google_exceptions.NotFound as error:
            if missing_ok:
                raise _Missing() from None
            raise self._error(action, f"not found (HTTP 404): {error.message}") from None
        except (google_exceptions.Unauthenticated, google_exceptions.PermissionDenied) as error:
            raise self._error(action, f"Google rejected the credentials (HTTP {error.code}): {error.message}. "
                                      f"Check the environment's credentials and the account's Cloud Run "
                                      f"roles") from None
        except auth_exceptions.RefreshError as error:
            # An access token alone cannot be refreshed, so a 401 for it ends here.
            raise self._error(action, f"Google rejected the credentials and they cannot be refreshed: {error}. "
                                      f"Check the environment's credentials") from None
        except google_exceptions.GoogleAPICallError as error:
            raise self._error(action, f"Google responded with HTTP {error.code}: {error.message}") from None
        except google_exceptions.RetryError as error:
            raise self._error(action, f"gave up retrying: {error.message}") from None
        except (google_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as error:
            raise self._error(action, f"failed: {error}") from None
        except requests.RequestException as error:
            raise self._error(action, f"cannot reach {self.endpoint or 'run.googleapis.com'}: "
                                      f"{type(error).__name__}") from None
        except TimeoutError as error:
            raise self._error(action, f"timed out: {error}") from None

    def _error(self, action: str, detail: str) -> AdapterError:
        message = redact(f"Cannot {action} of {self.target_name}: {detail}", self.credentials)
        log.warning("cloud run %s: %s", self.service, message)
        return AdapterError(message)


class _Missing(Exception):
    """The resource a read asked for does not exist (yet)."""


def tag_of(revision: str, service: str) -> str:
    """Return the traffic tag that gives `revision` its own URL: the revision name without the service."""
    suffix = revision.removeprefix(f"{service}-")
    return suffix if suffix[:1].isalpha() else f"r-{suffix}"


def _releases_of(service) -> dict[str, str]:
    try:
        releases = json.loads(service.annotations.get(RELEASES_ANNOTATION) or "{}")
    except ValueError:
        return {}
    return releases if isinstance(releases, dict) else {}


def _check_image(artifact: object) -> None:
    if not isinstance(artifact, str) or not IMAGE.match(artifact):
        raise InvalidTargetError([f"Release artifact {artifact!r} is not a container image reference like "
                                  f"'europe-docker.pkg.dev/project/repo/web:1.4.2'"])
