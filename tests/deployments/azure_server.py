"""A fake Azure Resource Manager for one App Service site, over HTTPS on 127.0.0.1.

It keeps the state the adapter works on (the production site, its slots, their container
image and app settings, the site configuration with its ramp-up rules) and answers the
operations the adapter uses. Every request is first checked against the Microsoft.Web
description in `azure_description.py`: an unknown path or method, a missing or unknown
api-version, an unknown query parameter, or a body with an unknown property, a wrong type
or a missing required property gets a 4xx with an ARM error body, so a wrong request
fails the test.

The Azure SDK's bearer token policy sends tokens only over HTTPS, so the server uses a
self-signed certificate made at start; `ca_bundle` is the file the SDK verifies it with.
"""

import copy
import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.deployments import azure_description
from tests.conftest import serve_in_thread
from tests.deployments.servers import serve_fake

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
RESOURCE_GROUP = "web-rg"
SITE = "deno-web"
LOCATION = "westeurope"


class ArmError(Exception):
    """An error answer: HTTP status, ARM error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeAzure:
    """The server, its state and the requests it received."""

    def __init__(self, folder: Path, token: str) -> None:
        self.token = token
        self.lock = threading.Lock()
        # Requests as (method, path, operation builder or None, HTTP status).
        self.requests: list[tuple[str, str, str | None, int]] = []
        self.sites: dict[str | None, dict] = {None: self._new_site(None, "mcr.microsoft.com/appsvc/staticsite:latest")}
        self.ramp_up_rules: list[dict] = []
        self.ca_bundle = str(folder / "azure-ca.pem")
        context = _tls_context(folder)
        self.server = serve_fake(self)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.endpoint = f"https://127.0.0.1:{self.server.server_port}"
        self.thread = serve_in_thread(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def settings(self, **extra) -> dict:
        """Target settings that point the adapter at this server."""
        return {"type": "azure_app_service", "subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP,
                "site": SITE, "slot": "staging", "endpoint": self.endpoint, "ca_bundle": self.ca_bundle,
                "retries": 0, **extra}

    # -- what tests read ------------------------------------------------------------------------------

    def release_of(self, slot: str | None) -> str | None:
        site = self.sites.get(slot)
        return site["app_settings"].get("DENO_CI_RELEASE") if site else None

    def slot_weight(self, slot: str) -> float:
        host = self._host(slot)
        return next((rule["reroutePercentage"] for rule in self.ramp_up_rules if rule["actionHostName"] == host), 0)

    def split(self) -> dict[str, int]:
        """The split the site serves, computed from the server's own state."""
        split: dict[str, int] = {}
        rest = 100
        for slot in [name for name in self.sites if name is not None]:
            weight = round(self.slot_weight(slot))
            rest -= weight
            if weight and self.release_of(slot):
                split[self.release_of(slot)] = split.get(self.release_of(slot), 0) + weight
        if rest and self.release_of(None):
            split[self.release_of(None)] = split.get(self.release_of(None), 0) + rest
        return split

    # -- requests ---------------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        builder = None
        try:
            self._check_token(request.headers.get("Authorization"))
            operation, parameters = self._check_request(request.command, url.path, parse_qs(url.query), raw,
                                                        request.headers.get("Content-Type"))
            builder = operation.builder
            with self.lock:
                status, body = self._answer(builder, parameters, json.loads(raw) if raw else None)
        except ArmError as error:
            status, body = error.status, {"error": {"code": error.code, "message": error.message}}
        self.requests.append((request.command, url.path, builder, status))
        data = json.dumps(body).encode() if body is not None else b""
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _check_token(self, header: str | None) -> None:
        if header != f"Bearer {self.token}":
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")

    def _check_request(self, method: str, path: str, query: dict, raw: bytes, content_type: str | None):
        found = azure_description.match(method, path)
        if found is None:
            if azure_description.path_exists(path):
                raise ArmError(405, "MethodNotAllowed", f"The method {method} is not allowed on {path}.")
            raise ArmError(404, "InvalidResourceType", f"No Microsoft.Web operation has the path {path}.")
        operation, parameters = found
        versions = query.get("api-version", [])
        if versions != [operation.api_version]:
            raise ArmError(400, "InvalidApiVersionParameter",
                           f"The api-version {versions} is invalid: {operation.builder} takes "
                           f"'{operation.api_version}'.")
        unknown = set(query) - operation.query
        if unknown:
            raise ArmError(400, "InvalidQueryParameter", f"Unknown query parameters {sorted(unknown)}.")
        if operation.body_model is not None:
            if not raw or not (content_type or "").startswith("application/json"):
                raise ArmError(400, "InvalidRequestContent", f"{operation.builder} needs a JSON body.")
            try:
                body = json.loads(raw)
            except ValueError:
                raise ArmError(400, "InvalidRequestContent", "The body is not valid JSON.") from None
            problems = azure_description.body_problems(body, operation.body_model)
            if problems:
                raise ArmError(400, "InvalidRequestContent", "; ".join(problems))
        elif raw:
            raise ArmError(400, "InvalidRequestContent", f"{operation.builder} takes no body.")
        if parameters.get("subscriptionId") != SUBSCRIPTION:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{parameters.get('subscriptionId')}' "
                                                        f"could not be found.")
        if parameters.get("resourceGroupName") != RESOURCE_GROUP:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{parameters.get('resourceGroupName')}' "
                                                         f"could not be found.")
        if parameters.get("name") != SITE:
            raise ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{parameters.get('name')}' "
                                                    f"under resource group '{RESOURCE_GROUP}' was not found.")
        return operation, parameters

    def _answer(self, builder: str, parameters: dict, body: dict | None) -> tuple[int, dict | None]:
        slot = parameters.get("slot")
        handlers = {
            "build_web_apps_get_request": lambda: self._site_json(None),
            "build_web_apps_get_slot_request": lambda: self._site_json(self._existing(slot)),
            "build_web_apps_create_or_update_slot_request": lambda: self._put_slot(slot, body),
            "build_web_apps_delete_slot_request": lambda: self._delete_slot(slot),
            "build_web_apps_list_application_settings_request": lambda: self._settings_json(None),
            "build_web_apps_list_application_settings_slot_request": lambda: self._settings_json(self._existing(slot)),
            "build_web_apps_update_application_settings_slot_request": lambda: self._put_settings(slot, body),
            "build_web_apps_get_configuration_request": self._config_json,
            "build_web_apps_update_configuration_request": lambda: self._patch_config(body),
            "build_web_apps_swap_slot_with_production_request": lambda: self._swap(body),
        }
        if builder not in handlers:
            raise ArmError(400, "NotImplementedByFake", f"The fake Azure does not implement {builder}.")
        return 200, handlers[builder]()

    # -- state --------------------------------------------------------------------------------------------

    def _new_site(self, slot: str | None, image: str) -> dict:
        return {"image": image, "app_settings": {"WEBSITES_PORT": "8000"}, "state": "Running"}

    def _host(self, slot: str | None) -> str:
        return f"{SITE}.azurewebsites.net" if slot is None else f"{SITE}-{slot}.azurewebsites.net"

    def _existing(self, slot: str) -> str:
        if slot not in self.sites:
            raise ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{SITE}/slots/{slot}' "
                                                    f"under resource group '{RESOURCE_GROUP}' was not found.")
        return slot

    def _resource_id(self, slot: str | None) -> str:
        base = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Web/sites/{SITE}"
        return base if slot is None else f"{base}/slots/{slot}"

    def _site_json(self, slot: str | None) -> dict:
        site = self.sites[slot]
        return {"id": self._resource_id(slot), "name": SITE if slot is None else f"{SITE}/{slot}",
                "type": "Microsoft.Web/sites" if slot is None else "Microsoft.Web/sites/slots",
                "location": LOCATION, "kind": "app,linux,container",
                "properties": {"state": site["state"], "defaultHostName": self._host(slot),
                               "serverFarmId": self._plan_id(), "provisioningState": "Succeeded",
                               "siteConfig": {"linuxFxVersion": f"DOCKER|{site['image']}"}}}

    def _plan_id(self) -> str:
        return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Web/serverfarms/plan"

    def _put_slot(self, slot: str, body: dict) -> dict:
        if not slot or slot.lower() == "production":
            raise ArmError(400, "BadRequest", f"The slot name '{slot}' is invalid.")
        if body.get("location", "").replace(" ", "").lower() != LOCATION:
            raise ArmError(400, "LocationNotAvailableForResourceType",
                           f"A slot must be in the site's location '{LOCATION}', got {body.get('location')!r}.")
        properties = body.get("properties") or {}
        if properties.get("serverFarmId") not in (None, self._plan_id()):
            raise ArmError(400, "BadRequest", "A slot must use the App Service plan of its site.")
        image = ((properties.get("siteConfig") or {}).get("linuxFxVersion") or "").removeprefix("DOCKER|")
        if slot in self.sites:
            self.sites[slot]["image"] = image or self.sites[slot]["image"]
        else:
            # A slot created without a configuration source gets its own app settings, not production's.
            self.sites[slot] = self._new_site(slot, image)
        return self._site_json(slot)

    def _delete_slot(self, slot: str) -> None:
        self._existing(slot)
        if self.slot_weight(slot):
            raise ArmError(409, "Conflict", f"Slot '{slot}' still receives traffic from a ramp-up rule.")
        del self.sites[slot]
        return None

    def _settings_json(self, slot: str | None) -> dict:
        return {"id": f"{self._resource_id(slot)}/config/appsettings", "name": "appsettings",
                "type": "Microsoft.Web/sites/config", "properties": dict(self.sites[slot]["app_settings"])}

    def _put_settings(self, slot: str, body: dict) -> dict:
        self._existing(slot)
        self.sites[slot]["app_settings"] = dict(body.get("properties") or {})
        return self._settings_json(slot)

    def _config_json(self) -> dict:
        return {"id": f"{self._resource_id(None)}/config/web", "name": "web", "type": "Microsoft.Web/sites/config",
                "location": LOCATION,
                "properties": {"linuxFxVersion": f"DOCKER|{self.sites[None]['image']}", "alwaysOn": True,
                               "experiments": {"rampUpRules": copy.deepcopy(self.ramp_up_rules)}}}

    def _patch_config(self, body: dict) -> dict:
        experiments = (body.get("properties") or {}).get("experiments")
        if experiments is not None:
            rules = experiments.get("rampUpRules") or []
            hosts = {self._host(slot): slot for slot in self.sites if slot is not None}
            total = 0
            for rule in rules:
                if rule.get("actionHostName") not in hosts:
                    raise ArmError(400, "BadRequest", f"Ramp-up rule host '{rule.get('actionHostName')}' is not "
                                                      f"a slot of site '{SITE}'.")
                percent = rule.get("reroutePercentage")
                if not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
                    raise ArmError(400, "BadRequest", f"reroutePercentage must be 0-100, got {percent!r}.")
                total += percent
            if total > 100:
                raise ArmError(400, "BadRequest", f"Ramp-up rules add up to {total} %, more than 100.")
            self.ramp_up_rules = copy.deepcopy(rules)
        return self._config_json()

    def _swap(self, body: dict) -> None:
        slot = self._existing(body["targetSlot"])
        production, staged = self.sites[None], self.sites[slot]
        # Content and app settings that are not slot settings trade places; the state stays with each site.
        production["image"], staged["image"] = staged["image"], production["image"]
        production["app_settings"], staged["app_settings"] = staged["app_settings"], production["app_settings"]
        return None


def _tls_context(folder: Path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    certificate_path, key_path = folder / "azure-ca.pem", folder / "azure-key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate_path, key_path)
    return context
