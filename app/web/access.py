"""Who may see and do what in the pages of this package, decided in one place.

TODO: replace the two checks below with `app.auth.permissions.can` once the shared
permission rules exist; until then administrators see every project, other people
the projects they are members of, and admins and developers of a project may
operate it (cancel, re-run, start runs, save its pipeline).
"""

from flask import abort
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.models import Membership, Project, Role

OPERATOR_ROLES = (Role.ADMIN, Role.DEVELOPER)


def _role(project: Project) -> str | None:
    return db.session.scalar(select(Membership.role).where(Membership.user_id == current_user.id,
                                                           Membership.project_id == project.id))


def may_view(project: Project) -> bool:
    """Return whether the signed-in user may see the project's runs and logs."""
    return current_user.is_admin or _role(project) is not None


def may_operate(project: Project) -> bool:
    """Return whether the signed-in user may cancel, re-run and start runs and save the pipeline."""
    return current_user.is_admin or _role(project) in OPERATOR_ROLES


def visible_projects_query():
    """Return a query of the projects the signed-in user may see, by name."""
    query = select(Project).order_by(Project.name)
    if not current_user.is_admin:
        member_of = select(Membership.project_id).where(Membership.user_id == current_user.id)
        query = query.where(Project.id.in_(member_of))
    return query


def viewable_project(name: str) -> Project:
    """Return the project called `name`; 404 if it does not exist or the user may not see it."""
    project = db.session.scalar(select(Project).where(Project.name == name))
    if project is None or not may_view(project):
        abort(404, f"Project {name!r} not found.")
    return project


def operable_project(name: str) -> Project:
    """Return the project called `name`; 403 if the user may only view it."""
    project = viewable_project(name)
    if not may_operate(project):
        abort(403, f"Changing project {name!r} needs the developer or admin role in it.")
    return project
