"""Turning domain errors into HTTP answers, in one place.

API requests (paths under /api/) get JSON `{"error": ..., "detail": ...}`; pages get
the error page with the same sentences.
"""

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from app.pipelines.runner import PipelineError
from app.projects import ProjectError
from app.forges import UnknownForgeError
from app.forges.base import ForgeError
from app.runs.rerun import RerunError
from app.runs.service import RunError
from app.deployments.requests import ApprovalError, DeploymentConflictError, DeploymentError

DOMAIN_STATUSES = {ProjectError: 422, PipelineError: 422, RunError: 503, RerunError: 409, UnknownForgeError: 404,
                   ForgeError: 502, DeploymentError: 422, DeploymentConflictError: 409, ApprovalError: 403}


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, error: str, detail: str):
    if wants_json():
        return jsonify({"error": error, "detail": detail}), status
    return render_template("error.html", status=status, error=error, detail=detail), status


def register_error_handlers(app: Flask) -> None:
    for error_class, status in DOMAIN_STATUSES.items():
        app.register_error_handler(error_class, lambda error, status=status: error_response(status, type(error).__name__, str(error)))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return error_response(error.code or 500, error.name, error.description or "")
