"""A project's settings pages: members and their roles, and secrets (write-only)."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app import secret_store
from app.admin import admin
from app.auth.accounts import find_user
from app.auth.audit import audit
from app.auth.permissions import Action, project_by_name, requires
from app.extensions import db
from app.models import Membership, Role, User


def _members(project):
    return db.session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project.id).order_by(User.username)
    ).all()


def _render_members(project, status: int = 200):
    if request.headers.get("HX-Request"):
        return render_template("admin/_members.html", project=project, members=_members(project), roles=list(Role)), status
    return render_template("admin/members.html", project=project, members=_members(project), roles=list(Role)), status


@admin.get("/projects/<name>/members")
@requires(Action.MANAGE_MEMBERS, project_by_name)
def members(name: str):
    """List the project's members with forms to add, change and remove them."""
    return _render_members(project_by_name(name))


@admin.post("/projects/<name>/members")
@requires(Action.MANAGE_MEMBERS, project_by_name)
def set_member(name: str):
    """Add a member or change their role."""
    project = project_by_name(name)
    username, role = request.form.get("username", "").strip()[:100], request.form.get("role", "")
    user = find_user(username)
    if user is None or role not in list(Role):
        flash(f"User {username!r} not found." if user is None else f"Role {role[:20]!r} is invalid.")
        return _render_members(project, 422)
    membership = db.session.scalar(select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id))
    before = membership.role if membership else None
    if membership is None:
        membership = Membership(project_id=project.id, user_id=user.id)
        db.session.add(membership)
    membership.role = role
    db.session.commit()
    audit("role_change", target=f"user {username} in project {name}", detail=f"{before or 'none'} -> {role}")
    return _render_members(project)


@admin.post("/projects/<name>/members/<username>/remove")
@requires(Action.MANAGE_MEMBERS, project_by_name)
def remove_member(name: str, username: str):
    """Remove a member from the project."""
    project = project_by_name(name)
    row = db.session.execute(
        select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project.id, User.username == username[:100].replace("\x00", ""))
    ).scalar_one_or_none()
    if row is None:
        abort(404, f"User {username[:100]!r} is not a member of project {name!r}.")
    db.session.delete(row)
    db.session.commit()
    audit("member_remove", target=f"user {username} in project {name}", detail=f"was {row.role}")
    return _render_members(project)


@admin.get("/projects/<name>/secrets")
@requires(Action.MANAGE_SECRETS, project_by_name)
def secrets(name: str):
    """List the names of the project's secrets with forms to set and delete them."""
    project = project_by_name(name)
    return render_template("admin/secrets.html", project=project, secrets=secret_store.list_secrets(project),
                           min_length=secret_store.MIN_VALUE_LENGTH)


@admin.post("/projects/<name>/secrets")
@requires(Action.MANAGE_SECRETS, project_by_name)
def set_secret(name: str):
    """Create or replace a secret; the value is never shown again."""
    project = project_by_name(name)
    secret_name = request.form.get("name", "").strip()
    try:
        created = secret_store.set_secret(project, secret_name, request.form.get("value", "").replace("\x00", ""), current_user.username)
    except secret_store.SecretError as error:
        flash(str(error))
        return render_template("admin/secrets.html", project=project, secrets=secret_store.list_secrets(project),
                               min_length=secret_store.MIN_VALUE_LENGTH), 422
    audit("secret_set", target=f"secret {secret_name} of project {name}", detail="created" if created else "replaced")
    flash(f"Secret {secret_name} saved.")
    return redirect(url_for("admin.secrets", name=name))


@admin.post("/projects/<name>/secrets/<secret_name>/delete")
@requires(Action.MANAGE_SECRETS, project_by_name)
def delete_secret(name: str, secret_name: str):
    """Delete a secret."""
    if not secret_store.delete_secret(project_by_name(name), secret_name[:100].replace("\x00", "")):
        abort(404, f"Project {name!r} has no secret {secret_name[:100]!r}.")
    audit("secret_delete", target=f"secret {secret_name} of project {name}")
    return redirect(url_for("admin.secrets", name=name))
