"""Permission checks for showing or hiding a page's controls; app.auth.permissions guards the routes themselves."""

from flask_login import current_user
from sqlalchemy import select

from app.auth.permissions import Action, can, visible_project_ids
from app.models import Project


def allowed(action: Action, project: Project) -> bool:
    """Return whether the signed-in user may do `action` in `project`, to show or hide its button."""
    return can(current_user._get_current_object(), action, project)


def visible_projects_query():
    """Return a query of the projects the signed-in user may see, by name."""
    user = current_user._get_current_object()
    return select(Project).where(Project.id.in_(visible_project_ids(user))).order_by(Project.name)
