"""A fake Cloud Run Admin API v2 for one service, over HTTP on 127.0.0.1.

It keeps a service (template, traffic, traffic statuses, annotations), its revisions and
the long-running operations of its changes. A change finishes `ready_delay` seconds after
the request, as on Cloud Run, where the traffic statuses and a new revision's Ready
condition follow the operation.

Every request is first checked against Google's discovery document of the API,
googleapiclient/discovery_cache/documents/run.v2.json from the installed
google-api-python-client: the method and path must match a method's flatPath, every
query parameter must be one the method or the API declares (with its type), and the
body's properties must exist in the request schema with the declared types. The
discovery document does not mark required body fields, so those are not checked. A
request that does not fit gets a Google-style error body with status 400 or 404.
"""

import copy
import importlib.resources
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.conftest import serve_in_thread
from tests.deployments.servers import serve_fake

PROJECT = "deno-ci-test"
REGION = "europe-west4"
SERVICE = "web"
PLACEHOLDER_REVISION = f"{SERVICE}-00001-abc"
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION"}


def discovery_document() -> dict:
    """Return the Cloud Run v2 discovery document shipped in google-api-python-client."""
    path = importlib.resources.files("googleapiclient") / "discovery_cache" / "documents" / "run.v2.json"
    return json.loads(path.read_text())


class ApiError(Exception):
    """An error answer with its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Description:
    """The discovery document's methods, and checks of requests against them."""

    def __init__(self, document: dict) -> None:
        self.schemas = document["schemas"]
        self.global_parameters = document.get("parameters", {})
        self.methods = []
        self._collect(document.get("resources", {}))

    def _collect(self, resources: dict) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape("/" + method["flatPath"]))
                self.methods.append((re.compile(f"^{regex}$"), method))
            self._collect(resource.get("resources", {}))

    def match(self, http_method: str, path: str) -> dict:
        found = [method for regex, method in self.methods if regex.match(path)]
        if not found:
            raise ApiError(404, f"The path {path} matches no method of the Cloud Run Admin API v2.")
        for method in found:
            if method["httpMethod"] == http_method:
                return method
        raise ApiError(404, f"The path {path} takes {sorted(m['httpMethod'] for m in found)}, not {http_method}.")

    def check_query(self, method: dict, query: dict[str, list[str]]) -> bool:
        """Check the query parameters; return True when enums may be sent as integers."""
        declared = {name: spec for name, spec in method.get("parameters", {}).items() if spec["location"] == "query"}
        integer_enums = False
        for name, values in query.items():
            # The Python clients send "$alt"; Google's front end takes it as the system parameter "alt".
            spec = declared.get(name) or self.global_parameters.get(name.removeprefix("$"))
            if spec is None:
                raise ApiError(400, f"Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query "
                                    f"parameter.")
            for value in values:
                base, _, options = value.partition(";")
                if spec.get("type") == "boolean" and value not in ("true", "false"):
                    raise ApiError(400, f"Invalid value '{value}' for boolean parameter {name}.")
                if "enum" in spec and base not in spec["enum"]:
                    raise ApiError(400, f"Invalid value '{value}' for parameter {name}: use one of {spec['enum']}.")
                integer_enums = integer_enums or options == "enum-encoding=int"
        for name, spec in declared.items():
            if spec.get("required") and name not in query:
                raise ApiError(400, f"Missing required query parameter {name}.")
        return integer_enums

    def body_problems(self, value: object, schema: dict, where: str, integer_enums: bool) -> list[str]:
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if "enum" in schema:
            allowed = value in schema["enum"] or (integer_enums and isinstance(value, int)
                                                  and 0 <= value < len(schema["enum"]))
            return [] if allowed else [f"{where}: invalid value {value!r} for enum {schema['enum']}"]
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: expected an object, got {type(value).__name__}"]
            properties = schema.get("properties")
            problems = []
            for key, item in value.items():
                if properties is not None and key in properties:
                    problems += self.body_problems(item, properties[key], f"{where}.{key}", integer_enums)
                elif "additionalProperties" in schema:
                    problems += self.body_problems(item, schema["additionalProperties"], f"{where}.{key}",
                                                   integer_enums)
                elif properties is not None:
                    problems.append(f"{where}: unknown name \"{key}\"")
            return problems
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected an array, got {type(value).__name__}"]
            return [problem for index, item in enumerate(value)
                    for problem in self.body_problems(item, schema["items"], f"{where}[{index}]", integer_enums)]
        return _scalar_problems(value, kind, schema.get("format"), where)


def _scalar_problems(value: object, kind: str | None, format_: str | None, where: str) -> list[str]:
    if kind == "string" and format_ in ("int64", "uint64"):
        ok = (isinstance(value, str) and re.fullmatch(r"-?\d+", value)) or (
            isinstance(value, int) and not isinstance(value, bool))
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    else:
        ok = True
    return [] if ok else [f"{where}: expected {kind}{f' ({format_})' if format_ else ''}, got {value!r}"]


class FakeCloudRun:
    """The server, its state and the requests it received."""

    def __init__(self, token: str, ready_delay: float = 0.2) -> None:
        self.token = token
        self.ready_delay = ready_delay
        self.description = Description(discovery_document())
        self.lock = threading.Lock()
        # Requests as (method, path, discovery method id or None, HTTP status).
        self.requests: list[tuple[str, str, str | None, int]] = []
        self.pending: list[tuple[float, object]] = []
        self.operations: dict[str, dict] = {}
        self.service_name = f"projects/{PROJECT}/locations/{REGION}/services/{SERVICE}"
        self.revisions = {PLACEHOLDER_REVISION: self._new_revision(PLACEHOLDER_REVISION, "us-docker.pkg.dev/hello",
                                                                   ready=True)}
        self.service = {
            "name": self.service_name, "uid": str(uuid.uuid4()), "generation": "1",
            "uri": f"https://{SERVICE}-abc123-ez.a.run.app", "annotations": {},
            "template": {"revision": PLACEHOLDER_REVISION, "containers": [{"image": "us-docker.pkg.dev/hello"}]},
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "trafficStatuses": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
                                 "revision": PLACEHOLDER_REVISION, "percent": 100}],
            "latestReadyRevision": f"{self.service_name}/revisions/{PLACEHOLDER_REVISION}",
            "latestCreatedRevision": f"{self.service_name}/revisions/{PLACEHOLDER_REVISION}",
            "reconciling": False,
        }
        self.server = serve_fake(self)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = serve_in_thread(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def settings(self, **extra) -> dict:
        """Target settings that point the adapter at this server."""
        return {"type": "gcp_cloud_run", "project": PROJECT, "region": REGION, "service": SERVICE,
                "endpoint": self.endpoint, "poll_interval": 0.05, **extra}

    def split(self) -> dict[str, int]:
        """The split the service serves, by release name, computed from the server's own state."""
        with self.lock:
            self._finish_due()
            releases = json.loads(self.service["annotations"].get("deno-ci.dev/releases", "{}"))
            split: dict[str, int] = {}
            for status in self.service["trafficStatuses"]:
                name = releases.get(status["revision"], status["revision"])
                if status.get("percent"):
                    split[name] = split.get(name, 0) + status["percent"]
            return split

    # -- requests ---------------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        method_id = None
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.")
            method = self.description.match(request.command, url.path)
            method_id = method["id"]
            integer_enums = self.description.check_query(method, parse_qs(url.query, keep_blank_values=True))
            body = self._check_body(method, raw, integer_enums)
            with self.lock:
                self._finish_due()
                status, answer = 200, self._answer(method_id, url.path.removeprefix("/v2/"), body)
        except ApiError as error:
            status = error.status
            answer = {"error": {"code": status, "message": error.message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}
        self.requests.append((request.command, url.path, method_id, status))
        data = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=UTF-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _check_body(self, method: dict, raw: bytes, integer_enums: bool) -> dict | None:
        if "request" not in method:
            if raw:
                raise ApiError(400, f"{method['id']} takes no request body.")
            return None
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise ApiError(400, "Invalid JSON payload received.") from None
        problems = self.description.body_problems(body, method["request"], "body", integer_enums)
        if problems:
            raise ApiError(400, "Invalid JSON payload received. " + "; ".join(problems))
        return _enum_names(body, method["request"], self.description)

    def _answer(self, method_id: str, name: str, body: dict | None) -> dict:
        if method_id == "run.projects.locations.operations.get":
            return self._operation_json(name)
        if method_id == "run.projects.locations.services.revisions.get":
            return self._revision_json(self._revision(name))
        if method_id == "run.projects.locations.services.revisions.delete":
            return self._delete_revision(self._revision(name))
        if name != self.service_name:
            raise ApiError(404, f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'SERVICE' in region '{REGION}' in "
                                f"project '{PROJECT}' does not exist.")
        if method_id == "run.projects.locations.services.get":
            return copy.deepcopy(self.service)
        if method_id == "run.projects.locations.services.patch":
            return self._patch_service(body)
        raise ApiError(400, f"The fake Cloud Run does not implement {method_id}.")

    # -- state --------------------------------------------------------------------------------------------

    def _new_revision(self, name: str, image: str, ready: bool = False) -> dict:
        return {"name": name, "image": image, "ready": ready, "failed": "broken" in image}

    def _revision(self, path: str) -> dict:
        short = path.rsplit("/", 1)[-1]
        if not path.startswith(f"{self.service_name}/revisions/") or short not in self.revisions:
            raise ApiError(404, f"Revision '{short}' does not exist.")
        return self.revisions[short]

    def _revision_json(self, revision: dict) -> dict:
        if revision["failed"]:
            state, message = "CONDITION_FAILED", f"Image '{revision['image']}' not found."
        else:
            state, message = ("CONDITION_SUCCEEDED", "") if revision["ready"] else ("CONDITION_RECONCILING", "")
        return {"name": f"{self.service_name}/revisions/{revision['name']}", "service": self.service_name,
                "reconciling": state == "CONDITION_RECONCILING",
                "containers": [{"image": revision["image"]}],
                "conditions": [{"type": "Ready", "state": state, "message": message}]}

    def _patch_service(self, body: dict) -> dict:
        # The client moves service.name into the URL and leaves it out of the body.
        if body.get("name", self.service_name) != self.service_name:
            raise ApiError(400, f"The service name in the body ({body.get('name')!r}) must match the URL.")
        template = body.get("template") or {}
        revision = template.get("revision") or ""
        new_revision = None
        if revision and revision not in self.revisions:
            if not revision.startswith(f"{SERVICE}-") or not re.fullmatch(r"[a-z][a-z0-9-]{0,61}[a-z0-9]", revision):
                raise ApiError(400, f"Revision name '{revision}' must start with '{SERVICE}-' and use lowercase "
                                    f"letters, digits and '-' (at most 63).")
            image = ((template.get("containers") or [{}])[0]).get("image") or ""
            new_revision = self._new_revision(revision, image)
        elif revision and template.get("containers") != self.service["template"].get("containers"):
            raise ApiError(409, f"Revision named '{revision}' with different configuration already exists.")
        traffic = body.get("traffic") or []
        self._check_traffic(traffic, {*self.revisions, *([revision] if new_revision else [])})
        if new_revision:
            self.revisions[revision] = new_revision
            self.service["latestCreatedRevision"] = f"{self.service_name}/revisions/{revision}"
        self.service["template"] = copy.deepcopy(template)
        self.service["traffic"] = copy.deepcopy(traffic)
        self.service["annotations"] = dict(body.get("annotations") or {})
        self.service["generation"] = str(int(self.service["generation"]) + 1)
        self.service["reconciling"] = True
        return self._start_operation(lambda: self._settle(new_revision))

    def _check_traffic(self, traffic: list[dict], revisions: set[str]) -> None:
        tags = [entry["tag"] for entry in traffic if entry.get("tag")]
        if len(tags) != len(set(tags)):
            raise ApiError(400, f"Traffic tags must be unique, got {tags}.")
        for entry in traffic:
            if entry.get("type") == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION" and entry.get("revision") not in revisions:
                raise ApiError(400, f"Revision '{entry.get('revision')}' named in the traffic does not exist.")
            if not 0 <= entry.get("percent", 0) <= 100:
                raise ApiError(400, f"Traffic percent must be 0-100, got {entry.get('percent')}.")
            if not entry.get("percent") and not entry.get("tag"):
                raise ApiError(400, "A traffic entry with 0 percent must have a tag.")
        total = sum(entry.get("percent", 0) for entry in traffic)
        if total != 100:
            raise ApiError(400, f"Traffic percents must add up to 100, got {total}.")

    def _settle(self, new_revision: dict | None) -> dict:
        if new_revision is not None and not new_revision["failed"]:
            new_revision["ready"] = True
            self.service["latestReadyRevision"] = f"{self.service_name}/revisions/{new_revision['name']}"
        statuses = []
        for entry in self.service["traffic"]:
            revision = entry.get("revision") or self.service["latestReadyRevision"].rsplit("/", 1)[-1]
            status = {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": revision,
                      "percent": entry.get("percent", 0)}
            if entry.get("tag"):
                status["tag"] = entry["tag"]
                status["uri"] = f"https://{entry['tag']}---{SERVICE}-abc123-ez.a.run.app"
            statuses.append(status)
        self.service["trafficStatuses"] = statuses
        self.service["reconciling"] = False
        return {"@type": "type.googleapis.com/google.cloud.run.v2.Service", **copy.deepcopy(self.service)}

    def _delete_revision(self, revision: dict) -> dict:
        listed = {entry.get("revision") for entry in self.service["traffic"]}
        if revision["name"] in listed:
            raise ApiError(412, f"Revision '{revision['name']}' is listed in the service's traffic.")
        if self.service["latestCreatedRevision"].endswith(f"/{revision['name']}"):
            raise ApiError(412, f"Revision '{revision['name']}' is the latest revision of the service.")
        del self.revisions[revision["name"]]
        answer = self._revision_json(revision)
        return self._start_operation(lambda: {"@type": "type.googleapis.com/google.cloud.run.v2.Revision", **answer})

    def _start_operation(self, finish) -> dict:
        name = f"projects/{PROJECT}/locations/{REGION}/operations/{uuid.uuid4()}"
        self.operations[name] = {"name": name, "done": False}

        def complete():
            self.operations[name] = {"name": name, "done": True, "response": finish()}

        self.pending.append((time.monotonic() + self.ready_delay, complete))
        return dict(self.operations[name])

    def _finish_due(self) -> None:
        now = time.monotonic()
        due = [item for item in self.pending if item[0] <= now]
        self.pending = [item for item in self.pending if item[0] > now]
        for _, complete in due:
            complete()

    def _operation_json(self, name: str) -> dict:
        if name not in self.operations:
            raise ApiError(404, f"Operation '{name}' does not exist.")
        return copy.deepcopy(self.operations[name])


def _enum_names(value: object, schema: dict, description: Description) -> object:
    """Return `value` with integer enums replaced by their names, as the server stores them."""
    if "$ref" in schema:
        schema = description.schemas[schema["$ref"]]
    if "enum" in schema and isinstance(value, int):
        return schema["enum"][value]
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties") or {}
        return {key: _enum_names(item, properties.get(key, extra), description) for key, item in value.items()}
    if isinstance(value, list):
        return [_enum_names(item, schema.get("items") or {}, description) for item in value]
    return value
