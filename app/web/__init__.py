from flask import Blueprint

web = Blueprint("web", __name__)

from app.web import auth, forge_auth, notifications, pages  # noqa: E402,F401
