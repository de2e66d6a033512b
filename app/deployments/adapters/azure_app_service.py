"""Azure App Service: a release goes into a deployment slot, and the site's ramp-up rules give it traffic.

The production site serves the live release. A new release (a container image) goes
into one deployment slot, and the production site's ramp-up rule for that slot
(siteConfig.experiments.rampUpRules, reroutePercentage to the slot's host name) sends
it its share. Promotion swaps the slot with production, so the slot then holds the
previous release for a quick rollback, which swaps back.

Which release a site or slot runs is read from its app setting DENO_CI_RELEASE. App
settings that are not slot settings move with the content in a swap, so the marker
always names what the site or slot really serves.

settings:
  subscription_id: the subscription's GUID
  resource_group: the site's resource group
  site: the App Service app (the production site)
  slot: the deployment slot for new releases (default "staging"); it is created when missing
  endpoint: Azure Resource Manager's address (default https://management.azure.com)
  ca_bundle: optional path to the CA certificates that verify the endpoint
  retries: how many times a request is retried after a connection error or 5xx (default 3)
  operation_timeout: seconds to wait for a slot creation or swap (default 600)
  public_url: optional address users reach; default https://<the site's host name>/
credentials (environment secrets):
  tenant_id, client_id, client_secret of a service principal, or access_token alone
"""

import logging
import re
import time

from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    AzureError, ClientAuthenticationError, HttpResponseError, ResourceNotFoundError, ServiceRequestError,
    ServiceResponseError,
)

from app.deployments.adapters._cloud import number_problems, redact
from app.deployments.adapters.base import Adapter, AdapterError, Capabilities, InvalidTargetError, TargetState
from app.deployments.adapters.release_folders import check_release_name

log = logging.getLogger(__name__)

RELEASE_SETTING = "DENO_CI_RELEASE"
DEFAULT_ENDPOINT = "https://management.azure.com"
# Azure naming rules for Microsoft.Web (learn.microsoft.com, "Naming rules and restrictions for Azure
# resources"), limited to ASCII; Azure also takes some Unicode letters that this adapter rejects.
SUBSCRIPTION_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$", re.ASCII)
SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]$")
SLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,57}[A-Za-z0-9]$")
# A slot's host name is <site>-<slot>.azurewebsites.net, and a DNS label has at most 63 characters.
MAX_HOST_LABEL = 63
IMAGE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
                   r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")
POLL_INTERVAL = 1.0


class StaticToken:
    """A TokenCredential that returns one access token, for `access_token` credentials."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        # The token's real lifetime is unknown here; Azure rejects it with 401 once it has expired.
        return AccessToken(self._token, int(time.time()) + 3600)


class AzureAppServiceAdapter(Adapter):
    """A production site and one deployment slot, weighted by a ramp-up rule."""

    # The production site and the slot serve at the same time; ramp-up rules take whole percents here.
    capabilities = Capabilities(max_live_releases=2, weight_granularity=1, preview_url=True)

    def __init__(self, settings: dict, credentials: dict | None = None) -> None:
        super().__init__(settings, credentials)
        self.subscription_id = settings.get("subscription_id")
        self.resource_group = settings.get("resource_group")
        self.site = settings.get("site")
        self.slot = settings.get("slot") or "staging"
        self.endpoint = (settings.get("endpoint") or DEFAULT_ENDPOINT).rstrip("/")
        self._client = None
        self._hosts: dict[str | None, str] = {}

    # -- settings ---------------------------------------------------------------------------------

    def validate(self) -> None:
        problems = []
        if not SUBSCRIPTION_ID.match(str(self.subscription_id or "")):
            problems.append(f"Setting 'subscription_id' must be a GUID like 00000000-0000-0000-0000-000000000000, "
                            f"got {self.subscription_id!r}")
        if not RESOURCE_GROUP.match(str(self.resource_group or "")):
            problems.append(f"Setting 'resource_group' must be 1-90 letters, digits, '_', '-', '.', '(' or ')' "
                            f"and not end with '.', got {self.resource_group!r}")
        if not SITE_NAME.match(str(self.site or "")):
            problems.append(f"Setting 'site' must be 2-60 letters, digits or '-', not starting or ending with '-', "
                            f"got {self.site!r}")
        if not SLOT_NAME.match(str(self.slot)) or str(self.slot).lower() == "production":
            problems.append(f"Setting 'slot' must be 2-59 letters, digits or '-', not starting or ending with '-' "
                            f"and not 'production', got {self.slot!r}")
        elif SITE_NAME.match(str(self.site or "")) and len(f"{self.site}-{self.slot}") > MAX_HOST_LABEL:
            problems.append(f"Site {self.site!r} and slot {self.slot!r} make the host name label "
                            f"'{self.site}-{self.slot}' longer than {MAX_HOST_LABEL} characters: use a shorter slot")
        if not re.match(r"^https://[^/\s]+$", self.endpoint):
            problems.append(f"Setting 'endpoint' must be an https:// address with no path, got {self.endpoint!r}")
        problems.extend(number_problems(self.settings, {"retries": (0, 10), "operation_timeout": (1, 7200)}))
        problems.extend(self._credential_problems())
        if problems:
            raise InvalidTargetError(problems)

    def _credential_problems(self) -> list[str]:
        if self.credentials.get("access_token"):
            return []
        missing = [key for key in ("tenant_id", "client_id", "client_secret") if not self.credentials.get(key)]
        if missing:
            return [f"The environment's credentials need 'tenant_id', 'client_id' and 'client_secret' of a service "
                    f"principal (or an 'access_token'); missing: {', '.join(missing)}"]
        return []

    @property
    def target_name(self) -> str:
        return f"site {self.site!r} in resource group {self.resource_group!r}"

    # -- the interface ----------------------------------------------------------------------------

    def describe(self) -> TargetState:
        production = self._production_release()
        slot_release = self._slot_release()
        weight = self._slot_weight() if slot_release is not None else 0
        split: dict[str, int] = {}
        for name, share in ((production, 100 - weight), (slot_release, weight)):
            if name is not None and share > 0:
                split[name] = split.get(name, 0) + share
        installed = sorted({name for name in (production, slot_release) if name is not None})
        return TargetState(split=split, installed=installed)

    def prepare(self, release: str, artifact: str, stable: str | None) -> dict[str, int]:
        check_release_name(release)
        _check_image(artifact)
        if self._production_release() == release:
            return self.describe().split
        slot_release = self._slot_release()
        if slot_release == release:
            return self.describe().split
        if slot_release is not None and slot_release == stable:
            raise AdapterError(f"Slot {self.slot!r} of {self.target_name} serves the live release {stable!r}, "
                               f"so release {release!r} has no free slot: promote or roll back first")
        if slot_release is not None and self._slot_weight() > 0:
            self._write_slot_weight(0)
        self._install(release, artifact)
        log.info("azure site %s: release %s installed in slot %s", self.site, release, self.slot)
        return self.describe().split

    def wait_until_ready(self, release: str, timeout: float) -> None:
        slot = self._slot_of(release)
        deadline = time.monotonic() + timeout
        state = None
        while True:
            site = self._call("read the state", self._get_site, slot)
            state = site.state
            if state == "Running":
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL)
        where = f"slot {slot!r}" if slot else "the production site"
        raise AdapterError(f"Release {release!r} in {where} of {self.target_name} was not running within "
                           f"{timeout:g} s (state {state!r})")

    def set_traffic(self, release: str, weight: int, stable: str | None) -> dict[str, int]:
        weight = self.check_weight(weight)
        release_slot = self._slot_of(release)
        if stable is None or stable == release:
            if weight != 100:
                raise InvalidTargetError([f"Weight {weight} for {release!r} leaves traffic unserved: there is no "
                                          f"live release to take the other {100 - weight} %"])
        elif self._slot_of(stable) == release_slot:
            raise AdapterError(f"Releases {release!r} and {stable!r} cannot share the traffic of {self.target_name}: "
                               f"both are reported in the same place")
        # The ramp-up rule gives the slot its share; production serves the rest.
        self._write_slot_weight(weight if release_slot else 100 - weight)
        return self.describe().split

    def promote(self, release: str, stable: str | None) -> dict[str, int]:
        if self._slot_of(release) is None:
            self._write_slot_weight(0)
            return self.describe().split
        # The rule goes to 0 before the swap: otherwise the slot's share would reach the old release
        # for the time between the swap and the rule change.
        self._write_slot_weight(0)
        self._swap()
        log.info("azure site %s: release %s swapped into production", self.site, release)
        return self.describe().split

    def rollback(self, stable: str | None, release: str) -> dict[str, int]:
        self._write_slot_weight(0)
        if self._production_release() == release and self._slot_exists():
            self._swap()
            log.info("azure site %s: swapped back, release %s left production", self.site, release)
        return self.describe().split

    def cleanup(self, keep: list[str]) -> None:
        if not self._slot_exists():
            return
        slot_release = self._slot_release()
        if slot_release in keep or self._slot_weight() > 0:
            return
        self._write_slot_weight(0)
        client = self.client
        self._call("delete the slot", client.web_apps.delete_slot, self.resource_group, self.site, self.slot)
        self._hosts.pop(self.slot, None)
        log.info("azure site %s: slot %s deleted (it held %s)", self.site, self.slot, slot_release)

    def preview_url(self, release: str) -> str | None:
        slot = self._slot_of(release)
        return f"https://{self._host_name(slot)}/"

    def public_url(self) -> str | None:
        return self.settings.get("public_url") or f"https://{self._host_name(None)}/"

    # -- reading ----------------------------------------------------------------------------------

    def _production_release(self) -> str | None:
        settings = self._call("read the app settings", self.client.web_apps.list_application_settings,
                              self.resource_group, self.site)
        return (settings.properties or {}).get(RELEASE_SETTING)

    def _slot_release(self) -> str | None:
        try:
            settings = self._call("read the slot's app settings", self.client.web_apps.list_application_settings_slot,
                                  self.resource_group, self.site, self.slot, missing_ok=True)
        except _Missing:
            return None
        return (settings.properties or {}).get(RELEASE_SETTING)

    def _slot_exists(self) -> bool:
        try:
            self._call("read the slot", self._get_site, self.slot, missing_ok=True)
        except _Missing:
            return False
        return True

    def _slot_of(self, release: str) -> str | None:
        """Return the slot serving `release`, None for the production site; raise when neither does."""
        if self._slot_release() == release:
            return self.slot
        if self._production_release() == release:
            return None
        raise AdapterError(f"Release {release!r} is not installed on {self.target_name}: neither the production "
                           f"site nor slot {self.slot!r} has {RELEASE_SETTING}={release}")

    def _ramp_up_rules(self) -> list:
        config = self._call("read the site configuration", self.client.web_apps.get_configuration,
                            self.resource_group, self.site)
        experiments = config.experiments
        return list(experiments.ramp_up_rules or []) if experiments else []

    def _slot_weight(self) -> int:
        host = self._host_name(self.slot).lower()
        for rule in self._ramp_up_rules():
            if (rule.action_host_name or "").lower() == host:
                return round(rule.reroute_percentage or 0)
        return 0

    def _host_name(self, slot: str | None) -> str:
        if slot not in self._hosts:
            site = self._call("read the host name", self._get_site, slot)
            self._hosts[slot] = site.default_host_name
        return self._hosts[slot]

    def _get_site(self, slot: str | None):
        if slot is None:
            return self.client.web_apps.get(self.resource_group, self.site)
        return self.client.web_apps.get_slot(self.resource_group, self.site, slot)

    # -- writing ----------------------------------------------------------------------------------

    def _write_slot_weight(self, weight: int) -> None:
        from azure.mgmt.web.models import Experiments, RampUpRule, SiteConfigResource

        host = self._host_name(self.slot) if self._slot_exists() else None
        rules = self._ramp_up_rules()
        others = [rule for rule in rules if host is None or (rule.action_host_name or "").lower() != host.lower()]
        ours = [RampUpRule(name=self.slot, action_host_name=host, reroute_percentage=weight)] if weight and host else []
        if len(others) == len(rules) and not ours:
            return
        config = SiteConfigResource(experiments=Experiments(ramp_up_rules=others + ours))
        self._call("set the ramp-up rules", self.client.web_apps.update_configuration,
                   self.resource_group, self.site, config)
        log.info("azure site %s: slot %s gets %s %% of the traffic", self.site, self.slot, weight)

    def _install(self, release: str, artifact: str) -> None:
        from azure.mgmt.web.models import Site, SiteConfig, StringDictionary

        production = self._call("read the site", self._get_site, None)
        slot = Site(location=production.location, server_farm_id=production.server_farm_id,
                    site_config=SiteConfig(linux_fx_version=f"DOCKER|{artifact}"))
        poller = self._call("create or update the slot", self.client.web_apps.begin_create_or_update_slot,
                            self.resource_group, self.site, self.slot, slot)
        self._call("create or update the slot", poller.result, self._operation_timeout())
        self._hosts.pop(self.slot, None)
        current = self._call("read the slot's app settings", self.client.web_apps.list_application_settings_slot,
                             self.resource_group, self.site, self.slot)
        values = dict(current.properties or {})
        values[RELEASE_SETTING] = release
        self._call("write the slot's app settings", self.client.web_apps.update_application_settings_slot,
                   self.resource_group, self.site, self.slot, StringDictionary(properties=values))

    def _swap(self) -> None:
        from azure.mgmt.web.models import CsmSlotEntity

        entity = CsmSlotEntity(target_slot=self.slot, preserve_vnet=True)
        poller = self._call("swap the slot with production", self.client.web_apps.begin_swap_slot_with_production,
                            self.resource_group, self.site, entity)
        self._call("swap the slot with production", poller.result, self._operation_timeout())

    def _operation_timeout(self) -> float:
        return float(self.settings.get("operation_timeout") or 600)

    # -- the SDK ------------------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            from azure.mgmt.web import WebSiteManagementClient

            options = {"retry_total": int(self.settings.get("retries", 3)), "connection_timeout": 10,
                       "read_timeout": 60, "polling_interval": 5}
            if self.settings.get("ca_bundle"):
                options["connection_verify"] = self.settings["ca_bundle"]
            self._client = WebSiteManagementClient(self._credential(), self.subscription_id, base_url=self.endpoint,
                                                   credential_scopes=[f"{self.endpoint}/.default"], **options)
        return self._client

    def _credential(self):
        if self.credentials.get("access_token"):
            return StaticToken(self.credentials["access_token"])
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(self.credentials["tenant_id"], self.credentials["client_id"],
                                      self.credentials["client_secret"])

    def _call(self, action: str, function, *arguments, missing_ok: bool = False):
        """Run one SDK call; turn its failure into an AdapterError naming the action, never a credential."""
        try:
            return function(*arguments)
        except ResourceNotFoundError as error:
            if missing_ok:
                raise _Missing() from None
            raise self._error(action, f"not found (HTTP 404): {_provider_message(error)}") from None
        except ClientAuthenticationError as error:
            raise self._error(action, f"Azure rejected the credentials: {_provider_message(error)}. Check the "
                                      f"environment's credentials and the principal's role on the site") from None
        except HttpResponseError as error:
            raise self._error(action, f"Azure answered HTTP {error.status_code}: {_provider_message(error)}") from None
        except (ServiceRequestError, ServiceResponseError) as error:
            raise self._error(action, f"cannot reach {self.endpoint}: {error.message}") from None
        except AzureError as error:
            raise self._error(action, f"failed: {error.message}") from None

    def _error(self, action: str, detail: str) -> AdapterError:
        message = redact(f"Cannot {action} of {self.target_name}: {detail}", self.credentials)
        log.warning("azure site %s: %s", self.site, message)
        return AdapterError(message)


class _Missing(Exception):
    """The resource a read asked for does not exist (yet)."""


def _provider_message(error: AzureError) -> str:
    odata = getattr(error, "error", None)
    if odata is not None and getattr(odata, "code", None):
        return f"{odata.code}: {odata.message}"
    return str(error.message or error).splitlines()[0][:500]


def _check_image(artifact: object) -> None:
    if not isinstance(artifact, str) or not IMAGE.match(artifact):
        raise InvalidTargetError([f"Release artifact {artifact!r} is not a container image reference "
                                  f"like 'myregistry.azurecr.io/web:1.4.2'"])

