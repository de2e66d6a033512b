"""Projects: list, create, get, update, delete, plus their members, secrets and metrics."""

from pathlib import Path

from flask import abort, current_app, jsonify, url_for
from flask_login import current_user
from sqlalchemy import select

from app import secret_store
from app.api import api
from app.api.params import body_text, json_body, paginate, reject_other_fields, reject_unknown_fields
from app.api.serialize import member_json, project_json, secret_json
from app.auth.accounts import find_user
from app.auth.audit import audit
from app.auth.permissions import Action, project_by_name, requires, signed_in, visible_project_ids
from app.extensions import db
from app.models import Membership, Project, Role, User
from app.projects import (add_project, check_clone_url_access, delete_project as remove_project,
                          update_project as change_project)
from app.runs.metrics import project_metrics

PROJECT_FIELDS = ("clone_url", "default_branch", "pipeline_path")


@api.get("/projects")
@signed_in
def list_projects():
    """List the projects the caller may view, by name."""
    query = select(Project).where(Project.id.in_(visible_project_ids(current_user))).order_by(Project.name)
    document, headers = paginate(query, "projects", project_json)
    return jsonify(document), 200, headers


@api.post("/projects")
@requires(Action.CREATE_PROJECT)
def create_project():
    """Connect a repository as a project; its creator becomes the project's admin."""
    body = json_body()
    name = body_text(body, "name", required=True, max_length=100)
    settings = {field: body_text(body, field, max_length=2000) for field in PROJECT_FIELDS}
    settings["clone_url"] = settings["clone_url"] or abort(422, "'clone_url' is missing.")
    check_clone_url_access(settings["clone_url"], current_user, Path(current_app.config["DATA_DIR"]))
    project = add_project(name, settings["clone_url"], settings["default_branch"] or "main",
                          settings["pipeline_path"] or "deno-pipeline.ts")
    if not current_user.is_admin:
        db.session.add(Membership(user_id=current_user.id, project_id=project.id, role=Role.ADMIN))
        db.session.commit()
    audit("project_create", target=f"project {project.name}")
    return jsonify(project_json(project)), 201, {"Location": url_for("api.get_project", name=project.name)}


@api.get("/projects/<name>")
@requires(Action.VIEW_PROJECT, project_by_name)
def get_project(name: str):
    """Return a project."""
    return jsonify(project_json(project_by_name(name)))


@api.patch("/projects/<name>")
@requires(Action.MANAGE_PROJECT, project_by_name)
def update_project(name: str):
    """Change a project's clone URL, default branch or pipeline path."""
    body = json_body()
    project = project_by_name(name)
    reject_unknown_fields(body, PROJECT_FIELDS, "a project",
                          "For another name or forge, add the repository again as a new project.")
    changes = {field: body_text(body, field, max_length=2000) for field in PROJECT_FIELDS}
    if changes.get("clone_url"):
        check_clone_url_access(changes["clone_url"], current_user, Path(current_app.config["DATA_DIR"]))
    change_project(project, **changes)
    audit("project_update", target=f"project {name}")
    return jsonify(project_json(project))


@api.delete("/projects/<name>")
@requires(Action.MANAGE_PROJECT, project_by_name)
def delete_project(name: str):
    """Delete a project with all its runs and logs."""
    remove_project(project_by_name(name))
    audit("project_delete", target=f"project {name}")
    return "", 204


@api.get("/projects/<name>/metrics")
@requires(Action.VIEW_PROJECT, project_by_name)
def get_metrics(name: str):
    """Return success rate, duration and queue time of the project's runs over the last `days` days."""
    from app.api.params import int_arg

    days = int_arg("days", 30, 1, 366)
    return jsonify(project_metrics(project_by_name(name), days))


@api.get("/projects/<name>/members")
@requires(Action.MANAGE_MEMBERS, project_by_name)
def list_members(name: str):
    """List the project's members and their roles."""
    project = project_by_name(name)
    rows = db.session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project.id).order_by(User.username)
    ).all()
    return jsonify({"members": [member_json(membership, user) for membership, user in rows]})


def _user_by_name(username: str) -> User:
    user = find_user(username)
    return user or abort(404, f"User {username[:100]!r} not found.")


@api.put("/projects/<name>/members/<username>")
@requires(Action.MANAGE_MEMBERS, project_by_name)
def set_member(name: str, username: str):
    """Add a user to the project or change their role: body {"role": "admin" | "developer" | "viewer"}."""
    project, user = project_by_name(name), _user_by_name(username)
    role = body_text(json_body(), "role", required=True, max_length=20)
    if role not in Role.__members__.values():
        abort(422, f"'role' must be one of admin, developer, viewer, got {role!r}.")
    membership = db.session.scalar(select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id))
    created = membership is None
    before = None if created else membership.role
    if created:
        membership = Membership(project_id=project.id, user_id=user.id)
        db.session.add(membership)
    membership.role = role
    db.session.commit()
    audit("role_change", target=f"user {username} in project {name}", detail=f"{before or 'none'} -> {role}")
    return jsonify(member_json(membership, user)), 201 if created else 200


@api.delete("/projects/<name>/members/<username>")
@requires(Action.MANAGE_MEMBERS, project_by_name)
def remove_member(name: str, username: str):
    """Remove a user from the project."""
    project, user = project_by_name(name), _user_by_name(username)
    membership = db.session.scalar(select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id))
    if membership is None:
        abort(404, f"User {username!r} is not a member of project {name!r}.")
    db.session.delete(membership)
    db.session.commit()
    audit("member_remove", target=f"user {username} in project {name}", detail=f"was {membership.role}")
    return "", 204


@api.get("/projects/<name>/secrets")
@requires(Action.MANAGE_SECRETS, project_by_name)
def list_secrets(name: str):
    """List the names of the project's secrets (values are never returned)."""
    return jsonify({"secrets": [secret_json(secret) for secret in secret_store.list_secrets(project_by_name(name))]})


@api.put("/projects/<name>/secrets/<secret_name>")
@requires(Action.MANAGE_SECRETS, project_by_name)
def set_secret(name: str, secret_name: str):
    """Create or replace a secret: body {"value": "..."}; the answer names it but never repeats the value."""
    project = project_by_name(name)
    body = json_body()
    reject_other_fields(body, ("value",), "a secret")
    value = body_text(body, "value", required=True, max_length=secret_store.MAX_VALUE_LENGTH)
    created = secret_store.set_secret(project, secret_name, value, current_user.username)
    audit("secret_set", target=f"secret {secret_name} of project {name}", detail="created" if created else "replaced")
    secret = next(item for item in secret_store.list_secrets(project) if item.name == secret_name)
    return jsonify(secret_json(secret)), 201 if created else 200


@api.delete("/projects/<name>/secrets/<secret_name>")
@requires(Action.MANAGE_SECRETS, project_by_name)
def delete_secret(name: str, secret_name: str):
    """Delete a secret."""
    if not secret_store.delete_secret(project_by_name(name), secret_name):
        abort(404, f"Project {name!r} has no secret {secret_name[:100]!r}.")
    audit("secret_delete", target=f"secret {secret_name} of project {name}")
    return "", 204


