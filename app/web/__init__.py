from flask import Blueprint

web = Blueprint("web", __name__)

from app.web import auth, deployments, forge_auth, notifications, pages  # noqa: E402,F401
