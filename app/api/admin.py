"""The caller's own account, and for administrators: users and the audit log."""

from flask import abort, jsonify, url_for
from flask_login import current_user
from sqlalchemy import select

from app.api import api
from app.api.params import body_bool, body_text, choice_arg, json_body, paginate, reject_unknown_fields, text_arg
from app.api.serialize import audit_json, user_json
from app.auth.accounts import invite_user, update_user
from app.auth.audit import OUTCOMES, audit
from app.auth.permissions import MAX_ID, Action, requires, signed_in
from app.extensions import db
from app.models import AuditEntry, User

# The fields of a user that PATCH /users/<id> changes.
USER_FIELDS = ("active", "is_admin", "email")


@api.get("/user")
@signed_in
def get_current_user():
    """Return the signed-in user (or the owner of the API token)."""
    return jsonify(user_json(current_user))


@api.get("/users")
@requires(Action.ADMIN)
def list_users():
    """List every user by name."""
    document, headers = paginate(select(User).order_by(User.username), "users", user_json)
    return jsonify(document), 200, headers


@api.post("/users")
@requires(Action.ADMIN)
def create_user():
    """Invite a user: body {"username", "email", "is_admin"}; the one-time password is in this answer only."""
    body = json_body()
    username = body_text(body, "username", required=True, max_length=100)
    email = body_text(body, "email", max_length=300)
    is_admin = bool(body_bool(body, "is_admin"))
    user, password = invite_user(username, email, is_admin)
    audit("user_invite", target=f"user {username}", detail="administrator" if is_admin else None)
    return jsonify({**user_json(user), "password": password}), 201, {"Location": url_for("api.get_user", user_id=user.id)}


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    return user or abort(404, f"User {user_id} not found.")


@api.get("/users/<int:user_id>")
@requires(Action.ADMIN)
def get_user(user_id: int):
    """Return a user."""
    return jsonify(user_json(_user(user_id)))


@api.patch("/users/<int:user_id>")
@requires(Action.ADMIN)
def patch_user(user_id: int):
    """Change a user: body with any of {"active", "is_admin", "email"}."""
    body = json_body()
    user = _user(user_id)
    reject_unknown_fields(body, USER_FIELDS, f"user {user.username!r}",
                          "A user name cannot change: invite a user under the new name and deactivate this one.")
    changes = update_user(user, current_user, active=body_bool(body, "active"), is_admin=body_bool(body, "is_admin"),
                          email=body_text(body, "email", max_length=300))
    if changes:
        audit("user_update", target=f"user {user.username}", detail=", ".join(changes))
    return jsonify(user_json(user))


@api.get("/audit")
@requires(Action.ADMIN)
def list_audit():
    """List audit entries, newest first, filtered by `action`, `actor` and `outcome`."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if (action := text_arg("action", 50)) is not None:
        query = query.where(AuditEntry.action == action)
    if (actor := text_arg("actor", 100)) is not None:
        query = query.where(AuditEntry.actor_name == actor)
    if (outcome := choice_arg("outcome", OUTCOMES)) is not None:
        query = query.where(AuditEntry.outcome == outcome)
    document, headers = paginate(query, "entries", audit_json)
    return jsonify(document), 200, headers
