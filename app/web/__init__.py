from flask import Blueprint

web = Blueprint("web", __name__)

from app.web import auth, dashboard, deployments, editor, forge_auth, history, metrics, notifications, runs  # noqa: E402,F401
from app.web import webhook_deliveries  # noqa: E402,F401
from app.web import formatting  # noqa: E402,F401
