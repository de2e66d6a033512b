"""Every permission decision of the platform, in one place.

`can(user, action, project)` decides; `requires(...)` guards a view with it and
sets the view's `route_rule`, so a test can walk the route map and fail for a
route without a rule. Global administrators may do everything; anyone
else gets the actions of their role in the project (see `Role`), and nothing in
projects they are not a member of.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from flask import abort, current_app, g, make_response, request
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.models import Membership, Project, Role, Run, User

log = logging.getLogger(__name__)


class Action(StrEnum):
    VIEW_PROJECT = "view_project"  # see the project, its runs, stages, logs, artifacts and metrics
    TRIGGER_RUN = "trigger_run"  # start a run by hand
    CANCEL_RUN = "cancel_run"
    RERUN = "rerun"
    EDIT_PIPELINE = "edit_pipeline"
    DEPLOY = "deploy"
    MANAGE_PROJECT = "manage_project"  # change or delete the project's settings
    MANAGE_MEMBERS = "manage_members"  # add, remove and change the roles of the project's members
    MANAGE_SECRETS = "manage_secrets"  # set and delete secrets (their values are never shown)
    VIEW_DELIVERIES = "view_deliveries"  # see the webhook deliveries the project received, headers and bodies
    REDELIVER = "redeliver"  # process a stored webhook delivery again, which can start a run
    CREATE_PROJECT = "create_project"
    ADMIN = "admin"  # users, every token, the audit log


DEVELOPER_ACTIONS = frozenset({
    Action.VIEW_PROJECT, Action.VIEW_DELIVERIES, Action.TRIGGER_RUN, Action.CANCEL_RUN, Action.RERUN,
    Action.EDIT_PIPELINE, Action.DEPLOY,
})
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    # Stored deliveries contain no secret (app/forges/deliveries.py drops signature headers), and their
    # payloads tell no more than the runs they start, so viewers may read them.
    Role.VIEWER: frozenset({Action.VIEW_PROJECT, Action.VIEW_DELIVERIES}),
    Role.DEVELOPER: DEVELOPER_ACTIONS,
    # Redelivering replays a signed payload as if the forge sent it again, so it stays with project admins.
    Role.ADMIN: DEVELOPER_ACTIONS | {Action.MANAGE_PROJECT, Action.MANAGE_MEMBERS, Action.MANAGE_SECRETS,
                                     Action.REDELIVER},
}
# The API token scope an action needs, when the request is authenticated by a token.
ACTION_SCOPES: dict[Action, str] = {
    Action.VIEW_PROJECT: "read",
    Action.VIEW_DELIVERIES: "read",
    Action.ADMIN: "admin",
    Action.MANAGE_MEMBERS: "admin",
}


def role_in(user: User, project: Project) -> str | None:
    """Return the user's role in the project, or None for a non-member."""
    return db.session.scalar(select(Membership.role).where(Membership.user_id == user.id, Membership.project_id == project.id))


def can(user: User | None, action: Action, project: Project | None = None) -> bool:
    """Decide whether `user` may do `action`, in `project` for project actions."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.active:
        return False
    if user.is_admin:
        return True
    if action == Action.ADMIN:
        return False
    if action == Action.CREATE_PROJECT:
        # Developers create projects: anyone who is a developer or admin in some project may.
        return db.session.scalar(
            select(Membership.id).where(Membership.user_id == user.id, Membership.role.in_([Role.DEVELOPER, Role.ADMIN])).limit(1)
        ) is not None
    if project is None:
        return False
    role = role_in(user, project)
    return role is not None and action in ROLE_ACTIONS.get(role, frozenset())


def visible_project_ids(user: User):
    """Return a SELECT of the ids of the projects `user` may view (all of them for administrators)."""
    if user.is_admin:
        return select(Project.id)
    return select(Membership.project_id).where(Membership.user_id == user.id)


@dataclass(frozen=True)
class RouteRule:
    """The requirement of a route: "public", "signed_in", or an action checked in the route's project, if any."""

    kind: str
    action: Action | None = None


def _register(view: Callable, rule: RouteRule) -> None:
    # Wrappers made with functools.wraps (flask-sock's among them) copy this attribute along.
    view.route_rule = rule


def public(view: Callable) -> Callable:
    """Mark a view as open to everyone, signed in or not."""
    _register(view, RouteRule("public"))
    return view


def signed_in(view: Callable) -> Callable:
    """Require a signed-in, active user (or a valid API token of one)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        _require_authenticated()
        token = g.get("api_token")
        if token is not None and request.method not in ("GET", "HEAD") and not scope_allows(token.scope, "write"):
            abort(403, f"This API token has scope {token.scope!r}; changes need scope 'write'.")
        return view(*args, **kwargs)

    _register(wrapper, RouteRule("signed_in"))
    return wrapper


def requires(action: Action, project: Callable[..., Project] | None = None) -> Callable:
    """Require `action`; `project(**view_args)` loads the route's project (404 if missing) when given.

    Non-members of a project get 404, not 403, so that project names do not leak;
    members whose role lacks the action get 403 and an audit entry.
    """

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            _require_authenticated()
            target = project(**kwargs) if project is not None else None
            authorize(action, target)
            return view(*args, **kwargs)

        _register(wrapper, RouteRule("action", action))
        return wrapper

    return decorate


def _require_authenticated() -> None:
    # The login manager's handler answers 401 to API requests and redirects pages to the sign-in form.
    if not current_user.is_authenticated:
        abort(make_response(current_app.login_manager.unauthorized()))


def authorize(action: Action, project: Project | None = None) -> None:
    """Abort with 404 or 403 unless the current user may do `action` (and their token's scope allows it)."""
    user = current_user._get_current_object()
    if project is not None and not user.is_admin and role_in(user, project) is None:
        # Reached through a run or deployment id, the response names that id, not the hidden project.
        abort(404, g.get("route_not_found") or f"Project {project.name!r} not found.")
    if not can(user, action, project):
        _deny(user, action, project, _denial(user, action, project))
    token = g.get("api_token")
    if token is not None and not scope_allows(token.scope, ACTION_SCOPES.get(action, "write")):
        _deny(user, action, project, f"This API token has scope {token.scope!r}; {action.replace('_', ' ')} "
              f"needs scope {ACTION_SCOPES.get(action, 'write')!r}. Create a token with a wider scope.")


def _denial(user: User, action: Action, project: Project | None) -> str:
    """Return why `user` may not do `action`, naming the role it needs."""
    if action == Action.ADMIN:
        return "Only administrators may do this; ask one to do it or to make you one."
    if project is None:
        return (f"'{action}' needs the developer or admin role in some project, or the administrator flag; "
                "ask an administrator.")
    needed = next((role for role in (Role.VIEWER, Role.DEVELOPER, Role.ADMIN) if action in ROLE_ACTIONS[role]), None)
    return (f"Your role in project {project.name!r} is {role_in(user, project)}; '{action}' needs the project "
            f"role {needed}. Ask an admin of the project for it.")


SCOPE_ORDER = ("read", "write", "admin")


def scope_allows(granted: str, needed: str) -> bool:
    """Return whether a token of scope `granted` covers `needed` (read < write < admin)."""
    return SCOPE_ORDER.index(granted) >= SCOPE_ORDER.index(needed)


def _deny(user: User, action: Action, project: Project | None, detail: str) -> None:
    from app.auth.audit import audit

    # Reads refused are not audited: a viewer browsing is no event, a write attempt is.
    if action != Action.VIEW_PROJECT or request.method != "GET":
        audit(action, target=f"project {project.name}" if project is not None else request.path,
              outcome="denied", detail=detail, actor=user)
    abort(403, detail)


def project_by_name(name: str, **_) -> Project:
    """Load the route's project from its `name`; 404 when there is none."""
    found = None
    if len(name) <= 100 and "\x00" not in name:
        found = db.session.scalar(select(Project).where(Project.name == name))
    return found or abort(404, f"Project {name[:100]!r} not found.")


MAX_ID = 2**31 - 1


def project_by_run(run_id: int, **_) -> Project:
    """Load the project of the route's run from its `run_id`; 404 when there is no such run."""
    run = load_run(run_id)
    # The session's identity map keeps objects only weakly, so keeping the run for the request lets the
    # view's own load_run() find it there instead of selecting it again.
    g.route_run = run
    g.route_not_found = f"Run {run.id} not found."
    return run.project


def load_run(run_id: int) -> Run:
    """Return the run `run_id`; 404 when there is none (ids beyond PostgreSQL's integer range included)."""
    run = db.session.get(Run, run_id) if 0 < run_id <= MAX_ID else None
    return run or abort(404, f"Run {run_id} not found.")


def checked_in_view(action: Action) -> Callable:
    """Declare that a view checks `action` itself, for views that cannot abort, such as WebSockets."""

    def decorate(view: Callable) -> Callable:
        _register(view, RouteRule("in_view", action))
        return view

    return decorate
