"""Turning domain errors into HTTP answers, in one place.

API requests (paths under /api/) and requests that prefer JSON to HTML in their Accept
header, such as the pipeline editor's, get JSON `{"error": ..., "detail": ...}`. Pages get
the error page with the same sentences.
"""

import logging

from flask import Flask, jsonify, render_template, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import HTTPException

from app.auth.accounts import AccountError, UserExistsError
from app.pipelines.runner import PipelineError
from app.projects import ProjectAccessError, ProjectBusyError, ProjectError, ProjectExistsError
from app.forges import UnknownForgeError
from app.forges.base import ForgeError
from app.runs.rerun import RerunError
from app.runs.service import RunError
from app.deployments.requests import ApprovalError, DeploymentConflictError, DeploymentError
from app.secret_store import SecretError

log = logging.getLogger(__name__)

DOMAIN_STATUSES = {
    ProjectError: 422, ProjectExistsError: 409, ProjectAccessError: 403, ProjectBusyError: 409, PipelineError: 422, RunError: 503,
    AccountError: 422, UserExistsError: 409, SecretError: 422,
    RerunError: 409, UnknownForgeError: 404, ForgeError: 502,
    DeploymentError: 422, DeploymentConflictError: 409, ApprovalError: 403,
}
# Exceptions that gunicorn raises while the application reads a body that ended early or has malformed chunks.
BODY_READ_ERRORS = (NoMoreData, ParseException)
ERROR_NAMES = {403: "Forbidden", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity", 502: "Bad Gateway", 503: "Service Unavailable"}


def wants_json() -> bool:
    """Return whether an error response should be JSON rather than the error page."""
    if request.path.startswith("/api/"):
        return True
    # A request without an Accept header, with */* or from a browser navigation gets HTML.
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def error_response(status: int, error: str, detail: str):
    if wants_json():
        return jsonify({"error": error, "detail": detail}), status
    return render_template("error.html", status=status, error=error, detail=detail), status


def _unreadable_body(error: Exception):
    log.warning("%s %s: the request body could not be read: %s", request.method, request.path, error)
    return error_response(400, "Bad Request", f"The request body ended early or is malformed ({error}). Send the "
                                              "whole body again.")


def register_error_handlers(app: Flask) -> None:
    for error_class, status in DOMAIN_STATUSES.items():
        app.register_error_handler(error_class, lambda error, status=status: error_response(status, ERROR_NAMES[status], str(error)))

    for error_class in BODY_READ_ERRORS:
        app.register_error_handler(error_class, _unreadable_body)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.response is not None:
            # Raised with a ready response (such as the redirect to the sign-in form): send it as it is.
            return error.response
        body, status = error_response(error.code or 500, error.name, error.description or "")
        # Keep headers such as Allow (405) and Retry-After (429).
        return body, status, {key: value for key, value in error.get_headers() if key.lower() != "content-type"}
