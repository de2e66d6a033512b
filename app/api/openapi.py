"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Written by hand next to the views it describes; tests/api/test_openapi.py runs
schemathesis against the live app and checks that every API route is in here.
"""

from flask import jsonify

from app.api import api
from app.auth.permissions import public
from app.runs.events import EVENT_KINDS
from app.status import RunStatus, StageStatus, StageWait


def _nullable(kind: str, **extra) -> dict:
    return {"type": [kind, "null"], **extra}


def _object(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(key: str, item: str) -> dict:
    return _object({key: {"type": "array", "items": _ref(item)}, "total": {"type": ["integer", "null"], "minimum": 0},
                    "page": {"type": "integer"}, "per_page": {"type": "integer"}})


TIME = _nullable("string", format="date-time")
SCHEMAS = {
    "Error": _object({"error": {"type": "string"}, "detail": {"type": "string"}}),
    "Project": _object({"id": {"type": "integer"}, "name": {"type": "string"}, "forge": {"type": "string"},
                        "forge_repo": _nullable("string"), "clone_url": {"type": "string"},
                        "default_branch": {"type": "string"}, "pipeline_path": {"type": "string"}}),
    "Stage": _object({"id": {"type": "integer"}, "name": {"type": "string"}, "position": {"type": "integer"},
                      "needs": {"type": "array", "items": {"type": "string"}},
                      "status": {"type": "string", "enum": list(StageStatus)},
                      "state": {"type": "string", "description": "The status in words, naming what a waiting stage "
                                                                 "waits for: 'deploying', 'waiting for approval'"},
                      "waiting_for": _nullable("string", enum=[*StageWait, None]),
                      "deployment_id": _nullable("integer"), "attempt": {"type": "integer"},
                      "exit_code": _nullable("integer"), "error": _nullable("string"), "allow_failure": {"type": "boolean"},
                      "queued_at": TIME, "started_at": TIME, "finished_at": TIME, "duration": _nullable("number")}),
    "Run": _object({"id": {"type": "integer"}, "project": {"type": "string"}, "number": {"type": "integer"},
                    "trigger": {"type": "string"}, "event": {"type": "string"}, "ref": _nullable("string"),
                    "branch": _nullable("string"), "tag": _nullable("string"), "commit": _nullable("string"),
                    "pull_request": _nullable("integer"), "author": _nullable("string"), "message": _nullable("string"),
                    "status": {"type": "string", "enum": list(RunStatus)}, "status_reason": _nullable("string"),
                    "queued_at": TIME, "started_at": TIME, "finished_at": TIME, "duration": _nullable("number"),
                    "url": {"type": "string"}}),
    "RunDetail": {"allOf": [_ref("Run"), _object({"stages": {"type": "array", "items": _ref("Stage")},
                                                   "artifacts": {"type": "array", "items": _ref("Artifact")}})]},
    "Artifact": _object({"name": {"type": "string"}, "size": {"type": "integer"}, "created_at": TIME,
                         "expires_at": TIME, "url": {"type": "string"}}),
    "LogLine": _object({"seq": {"type": "integer"}, "stage_id": _nullable("integer"),
                        "stream": {"type": "string", "enum": ["stdout", "stderr", "system"]}, "text": {"type": "string"},
                        "time": {"type": "string", "format": "date-time"}}),
    "Metrics": _object({"project": {"type": "string"}, "days": {"type": "integer"}, "since": {"type": "string"},
                        "runs": {"type": "integer"}, "succeeded": {"type": "integer"}, "failed": {"type": "integer"},
                        "cancelled": {"type": "integer"}, "success_rate": _nullable("number"),
                        "duration_seconds": _object({"mean": _nullable("number"), "p95": _nullable("number")}),
                        "queue_seconds": _object({"mean": _nullable("number"), "p95": _nullable("number")}),
                        "pipeline_path": {"type": "string"},
                        "stages": {"type": "array", "items": {"type": "object"},
                                   "description": "The same figures per stage name, with its `name`."},
                        "trend": {"type": "array", "items": {"type": "object"},
                                  "description": "The same figures per UTC day, with its `date`."},
                        "flaky_tests": {"type": "array", "items": _object({
                            "suite": {"type": "string"}, "name": {"type": "string"}, "commit": {"type": "string"},
                            "failed_run": {"type": "integer"}, "passed_run": {"type": "integer"}})}}),
    "User": _object({"id": {"type": "integer"}, "username": {"type": "string"}, "email": _nullable("string"),
                     "is_admin": {"type": "boolean"}, "active": {"type": "boolean"}, "created_at": TIME}),
    "Member": _object({"username": {"type": "string"}, "user_id": {"type": "integer"},
                       "role": {"type": "string", "enum": ["admin", "developer", "viewer"]}}),
    "Secret": _object({"name": {"type": "string"}, "created_at": TIME, "updated_at": TIME, "updated_by": _nullable("string")}),
    "Token": _object({"id": {"type": "integer"}, "name": {"type": "string"}, "user": {"type": "string"},
                      "scope": {"type": "string", "enum": ["read", "write", "admin"]}, "prefix": {"type": "string"},
                      "state": {"type": "string", "enum": ["active", "revoked", "expired"]}, "created_at": TIME,
                      "expires_at": TIME, "last_used_at": TIME, "revoked_at": TIME}),
    "Delivery": _object({"id": {"type": "integer"}, "forge": {"type": "string"}, "delivery_id": _nullable("string"),
                         "event": _nullable("string"), "status_code": {"type": "integer"}, "reason": {"type": "string"},
                         "run_id": _nullable("integer"), "received_count": {"type": "integer"},
                         "redelivery_of": _nullable("integer"), "received_at": {"type": "string", "format": "date-time"},
                         "last_received_at": {"type": "string", "format": "date-time"},
                         "can_redeliver": {"type": "boolean"}}),
    "DeliveryResult": {"type": "object", "required": ["reason", "delivery"], "properties": {
        "reason": {"type": "string"}, "delivery": _nullable("integer"), "run_id": {"type": "integer"},
        "run_number": {"type": "integer"}, "run_url": {"type": "string"}}},
    "Approval": _object({"id": {"type": "integer"}, "approved_by": _nullable("integer"),
                         "approved_at": {"type": "string", "format": "date-time"}}),
    "AuditEntry": _object({"id": {"type": "integer"}, "time": TIME, "actor": _nullable("string"),
                           "actor_id": _nullable("integer"), "action": {"type": "string"}, "target": _nullable("string"),
                           "outcome": {"type": "string", "enum": ["success", "failure", "denied"]},
                           "detail": _nullable("string"), "remote_addr": _nullable("string")}),
}

ERROR_TEXT = {400: "Bad request (such as a missing CSRF token)", 401: "Not signed in, or the token is malformed, unknown, "
              "expired or revoked", 403: "The role or the token's scope does not allow this", 404: "Not found, or not visible",
              405: "Method not allowed", 409: "Conflicts with the current state", 422: "Invalid input",
              502: "The forge failed or could not be reached", 503: "The queue is unreachable"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(summary: str, ok: dict, errors: tuple[int, ...] = (), parameters: list | None = None,
               body: dict | None = None, public_route: bool = False) -> dict:
    responses = dict(ok)
    for status in sorted({*errors, *(() if public_route else (401, 403))}):
        responses[str(status)] = _json(_ref("Error"), ERROR_TEXT[status])
    operation = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public_route:
        operation["security"] = []
    return operation


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
NAME = {"type": "string", "minLength": 1, "maxLength": 100}
PAGING = [_query("page", {"type": "integer", "minimum": 1, "maximum": 100_000}, "Page number, from 1."),
          _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100}, "Items per page (default 20).")]
RUN_FILTERS = [
    _query("branch", {"type": "string", "maxLength": 255}, "Only runs of this branch."),
    _query("status", {"type": "string", "enum": list(RunStatus)}, "Only runs in this status."),
    _query("event", {"type": "string", "enum": list(EVENT_KINDS)}, "Only runs started by this kind of event."),
    _query("trigger", {"type": "string", "enum": ["cli", "api", "webhook", "schedule", "rerun"]}, "Only runs started this way."),
    _query("author", {"type": "string", "maxLength": 300}, "Only runs of commits by this author."),
    _query("commit", {"type": "string", "maxLength": 64}, "Only runs of this commit id."),
    _query("since", {"type": "string", "format": "date-time"}, "Only runs queued at or after this time."),
    _query("until", {"type": "string", "format": "date-time"}, "Only runs queued before this time."),
    *PAGING,
]
PROJECT_BODY = {"type": "object", "properties": {
    "name": NAME, "clone_url": {"type": "string", "maxLength": 2000}, "default_branch": {"type": "string", "maxLength": 255},
    "pipeline_path": {"type": "string", "maxLength": 500}}}
LIST_HEADERS = {"Link": {"schema": {"type": "string"}}, "X-Total-Count": {"schema": {"type": "string"}}}


def _listed(key: str, item: str) -> dict:
    return {"200": {**_json(_page(key, item)), "headers": LIST_HEADERS}}


def _redeliver_operation() -> dict:
    """Describe the redelivery, whose 200, 202, 400, 404 and 503 responses may carry the delivery's own result."""
    either = {"oneOf": [_ref("Error"), _ref("DeliveryResult")]}
    operation = _operation("Process a stored webhook delivery again as a new delivery",
                           {"200": _json(_ref("DeliveryResult"), "Processed, nothing to run"),
                            "202": _json(_ref("DeliveryResult"), "Processed, run queued")}, (400, 404, 409, 503))
    for status in ("400", "404", "503"):
        operation["responses"][status] = _json(either, operation["responses"][status]["description"])
    return operation


def _deployment_paths() -> dict:
    """Environments and deployments; docs/deployments.md describes the documents in detail."""
    project, deployment = _path("name", NAME), _path("deployment_id", ID)
    environment = _path("environment", {"type": "string", "minLength": 1, "maxLength": 100})
    document = {"type": "object"}
    errors = (400, 404, 409, 422)

    def action(summary: str) -> dict:
        return {"parameters": [deployment], "post": _operation(summary, {"200": _json(document)}, errors)}

    return {
        "/projects/{name}/environments": {
            "parameters": [project],
            "get": _operation("List a project's environments with what is live", {"200": _json(document)}, (404,)),
        },
        "/projects/{name}/environments/{environment}": {
            "parameters": [project, environment],
            "put": _operation("Create or change an environment (its credentials are write-only)",
                              {"200": _json(document), "201": _json(document, "Created")}, errors, body=document),
        },
        "/projects/{name}/environments/{environment}/deployments": {
            "parameters": [project, environment],
            "get": _operation("List an environment's deployments, newest first", {"200": _json(document)}, (404,)),
            "post": _operation("Deploy a release to the environment", {"201": _json(document, "Queued")}, errors,
                               body=document),
        },
        "/deployments/{deployment_id}": {
            "parameters": [deployment],
            "get": _operation("Get a deployment with its steps, traffic and analysis results", {"200": _json(document)}, (404,)),
        },
        "/deployments/{deployment_id}/promote": action("Promote a paused canary to its next step"),
        "/deployments/{deployment_id}/abort": action("Abort a deployment and roll its traffic back"),
        "/deployments/{deployment_id}/approve": action("Approve a deployment waiting at an approval gate"),
        "/deployments/{deployment_id}/rollback": action("Roll back to the release that was live before"),
    }


def _paths() -> dict:
    project = _path("name", NAME)
    run = _path("run_id", ID)
    return {
        "/projects": {
            "get": _operation("List the projects the caller may view", _listed("projects", "Project"), (422,), PAGING),
            "post": _operation("Create a project", {"201": _json(_ref("Project"), "Created")}, (400, 409, 422),
                               body={**PROJECT_BODY, "required": ["name", "clone_url"]}),
        },
        "/projects/{name}": {
            "parameters": [project],
            "get": _operation("Get a project", {"200": _json(_ref("Project"))}, (404,)),
            "patch": _operation("Change a project's settings", {"200": _json(_ref("Project"))}, (400, 404, 422), body=PROJECT_BODY),
            "delete": _operation("Delete a project and all its runs", {"204": {"description": "Deleted"}}, (400, 404)),
        },
        "/projects/{name}/runs": {
            "parameters": [project],
            "get": _operation("List a project's runs", _listed("runs", "Run"), (404, 422), RUN_FILTERS),
            "post": _operation("Start a run of a branch or commit", {"201": _json(_ref("RunDetail"), "Queued")},
                               (400, 404, 422, 503), body={"type": "object", "properties": {
                                   "branch": {"type": "string", "maxLength": 255}, "commit": {"type": "string", "maxLength": 64}}}),
        },
        "/projects/{name}/metrics": {
            "parameters": [project],
            "get": _operation("Success rate, duration and queue time of a project's runs", {"200": _json(_ref("Metrics"))},
                              (404, 422), [_query("days", {"type": "integer", "minimum": 1, "maximum": 366}, "Window in days (default 30).")]),
        },
        "/projects/{name}/members": {
            "parameters": [project],
            "get": _operation("List a project's members", {"200": _json(_object({"members": {"type": "array", "items": _ref("Member")}}))}, (404,)),
        },
        "/projects/{name}/members/{username}": {
            "parameters": [project, _path("username", NAME)],
            "put": _operation("Add a member or change their role", {"200": _json(_ref("Member")), "201": _json(_ref("Member"), "Added")},
                              (400, 404, 422), body=_object({"role": {"type": "string", "enum": ["admin", "developer", "viewer"]}})),
            "delete": _operation("Remove a member", {"204": {"description": "Removed"}}, (400, 404)),
        },
        "/projects/{name}/secrets": {
            "parameters": [project],
            "get": _operation("List the names of a project's secrets", {"200": _json(_object({"secrets": {"type": "array", "items": _ref("Secret")}}))}, (404,)),
        },
        "/projects/{name}/secrets/{secret_name}": {
            "parameters": [project, _path("secret_name", NAME)],
            "put": _operation("Set a secret (write-only)", {"200": _json(_ref("Secret")), "201": _json(_ref("Secret"), "Created")},
                              (400, 404, 422), body=_object({"value": {"type": "string", "minLength": 8, "maxLength": 65536}})),
            "delete": _operation("Delete a secret", {"204": {"description": "Deleted"}}, (400, 404)),
        },
        "/projects/{name}/deliveries": {
            "parameters": [project],
            "get": _operation("List a project's webhook deliveries, newest first", _listed("deliveries", "Delivery"),
                              (404, 422), PAGING),
        },
        "/projects/{name}/deliveries/{delivery_id}/redeliver": {
            "parameters": [project, _path("delivery_id", ID)],
            "post": _redeliver_operation(),
        },
        "/runs": {
            "get": _operation("List runs of every visible project", _listed("runs", "Run"), (404, 422),
                              [_query("project", {"type": "string", "maxLength": 100}, "Only runs of this project."), *RUN_FILTERS]),
        },
        "/runs/{run_id}": {"parameters": [run], "get": _operation("Get a run with its stages", {"200": _json(_ref("RunDetail"))}, (404,))},
        "/runs/{run_id}/cancel": {
            "parameters": [run],
            "post": _operation("Cancel a run", {"200": _json(_ref("RunDetail"))}, (400, 404, 409)),
        },
        "/runs/{run_id}/rerun": {
            "parameters": [run],
            "post": _operation("Re-run a run that ended, whole or only its failed stages and their dependents",
                               {"201": _json({"allOf": [_ref("Run"), _object({"stages": {"type": "array", "items": _ref("Stage")}})]},
                                             "Queued")}, (400, 404, 409, 422, 503),
                               body={"type": "object", "properties": {"failed_only": {"type": "boolean"}}}),
        },
        "/runs/{run_id}/approve": {
            "parameters": [run],
            "post": _operation("Approve a run of a pull request from a fork, so that its stages get secrets "
                               "and its deploy stages start",
                               {"200": _json(_ref("Approval"))}, (400, 404, 409)),
        },
        **_deployment_paths(),
        "/runs/{run_id}/stages": {
            "parameters": [run],
            "get": _operation("List a run's stages", {"200": _json(_object({"stages": {"type": "array", "items": _ref("Stage")}}))}, (404,)),
        },
        "/runs/{run_id}/logs": {
            "parameters": [run],
            "get": _operation("Read and search a run's stored log", {"200": _json(_object({
                "lines": {"type": "array", "items": _ref("LogLine")}, "next_after": {"type": "integer"}}))}, (404, 422), [
                _query("after", {"type": "integer", "minimum": 0}, "Only lines with a greater sequence number."),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 5000}, "Lines at most (default 1000)."),
                _query("q", {"type": "string", "maxLength": 500}, "Only lines containing this text (case-insensitive)."),
                _query("stage", {"type": "string", "maxLength": 500}, "Only lines of the stage of this name."),
                _query("stream", {"type": "string", "enum": ["stdout", "stderr", "system"]}, "Only lines of this stream."),
            ]),
        },
        "/runs/{run_id}/artifacts/{name}": {
            "parameters": [run, _path("name", {"type": "string", "minLength": 1, "maxLength": 200})],
            "get": _operation("Download an artifact archive", {"200": {"description": "A .tar.gz archive",
                                                                      "content": {"application/gzip": {}}}}, (404,)),
        },
        "/user": {"get": _operation("The caller's account", {"200": _json(_ref("User"))})},
        "/users": {
            "get": _operation("List users (administrators)", _listed("users", "User"), (422,), PAGING),
            "post": _operation("Invite a user; the answer holds their one-time password",
                               {"201": _json({"allOf": [_ref("User"), _object({"password": {"type": "string"}})]}, "Created")},
                               (400, 409, 422), body={"type": "object", "required": ["username"], "properties": {
                                   "username": NAME, "email": {"type": "string", "maxLength": 300}, "is_admin": {"type": "boolean"}}}),
        },
        "/users/{user_id}": {
            "parameters": [_path("user_id", ID)],
            "get": _operation("Get a user", {"200": _json(_ref("User"))}, (404,)),
            "patch": _operation("Activate, deactivate or change a user", {"200": _json(_ref("User"))}, (400, 404, 422),
                                body={"type": "object", "properties": {"active": {"type": "boolean"}, "is_admin": {"type": "boolean"},
                                                                       "email": {"type": "string", "maxLength": 300}}}),
        },
        "/tokens": {
            "get": _operation("List API tokens (the caller's; administrators: all)", _listed("tokens", "Token"), (422,),
                              [_query("user", {"type": "string", "maxLength": 100}, "Administrators: only this user's tokens."), *PAGING]),
            "post": _operation("Create an API token; the answer holds its value, shown this once",
                               {"201": _json({"allOf": [_ref("Token"), _object({"token": {"type": "string"}})]}, "Created")},
                               (400, 422), body={"type": "object", "required": ["name", "scope"], "properties": {
                                   "name": NAME, "scope": {"type": "string", "enum": ["read", "write", "admin"]},
                                   "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 366}}}),
        },
        "/tokens/{token_id}": {
            "parameters": [_path("token_id", ID)],
            "delete": _operation("Revoke an API token", {"204": {"description": "Revoked"}}, (400, 404, 409)),
        },
        "/audit": {
            "get": _operation("Audit log (administrators)", _listed("entries", "AuditEntry"), (422,), [
                _query("action", {"type": "string", "maxLength": 50}, "Only entries of this action."),
                _query("actor", {"type": "string", "maxLength": 100}, "Only entries of this user."),
                _query("outcome", {"type": "string", "enum": ["success", "failure", "denied"]}, "Only entries with this outcome."),
                *PAGING]),
        },
        "/openapi.json": {"get": _operation("This document", {"200": _json({"type": "object"})}, public_route=True)},
    }


def document() -> dict:
    """Return the OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Deno CI API", "version": "1",
                 "description": "Errors are {\"error\", \"detail\"}. Lists take page and per_page and send Link and, up to 10,000 rows, X-Total-Count; beyond that `total` is null."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "session"}},
            "schemas": SCHEMAS,
        },
        "paths": _paths(),
    }


@api.get("/openapi.json")
@public
def openapi_document():
    """Serve the OpenAPI document."""
    return jsonify(document())
