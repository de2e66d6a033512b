"""The REST API under /api/v1 (JSON)."""

from flask import Blueprint

api = Blueprint("api", __name__)

from app.api import deployments, forges, runs  # noqa: E402,F401
