"""Pages for administrators (users, tokens, audit log), project settings (members, secrets) and one's own account."""

from flask import Blueprint

admin = Blueprint("admin", __name__)

from app.admin import account, pages, project_settings  # noqa: E402,F401
