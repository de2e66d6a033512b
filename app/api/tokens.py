"""Personal API tokens: list, create (the value is shown once), revoke."""

from flask import abort, g, jsonify
from flask_login import current_user
from sqlalchemy import select

from app.api import api
from app.api.params import body_text, json_body, paginate, text_arg
from app.api.serialize import token_json
from app.auth import tokens
from app.auth.audit import audit
from app.auth.permissions import MAX_ID, scope_allows, signed_in
from app.extensions import db
from app.models import ApiToken, User


@api.get("/tokens")
@signed_in
def list_tokens():
    """List the caller's tokens; administrators see every user's, or one user's with `user`."""
    query = select(ApiToken).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
    username = text_arg("user", 100)
    if not current_user.is_admin:
        query = query.where(ApiToken.user_id == current_user.id)
    elif username is not None:
        query = query.where(User.username == username)
    document, headers = paginate(query, "tokens", token_json)
    return jsonify(document), 200, headers


@api.post("/tokens")
@signed_in
def create_token():
    """Create a token for the caller: body {"name", "scope", "expires_in_days"}; the value is in this answer only."""
    body = json_body()
    name = body_text(body, "name", required=True, max_length=100)
    scope = body_text(body, "scope", required=True, max_length=10)
    days = body.get("expires_in_days", tokens.DEFAULT_EXPIRY_DAYS)
    if not isinstance(days, int) or isinstance(days, bool):
        abort(422, f"'expires_in_days' must be a whole number of days, got {type(days).__name__}.")
    caller_token = g.get("api_token")
    if caller_token is not None and scope in tokens.Scope.__members__.values() and not scope_allows(caller_token.scope, scope):
        abort(403, f"A token of scope {caller_token.scope!r} cannot create a token of wider scope {scope!r}.")
    try:
        token, value = tokens.create_token(current_user, name, scope, days)
    except ValueError as error:
        abort(422, str(error))
    audit("token_create", target=f"token {token.prefix}... of user {current_user.username}", detail=f"scope {scope}, {days} days")
    return jsonify({**token_json(token), "token": value}), 201


@api.delete("/tokens/<int:token_id>")
@signed_in
def revoke_token(token_id: int):
    """Revoke a token of the caller's (administrators: anyone's)."""
    token = db.session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if token is None or (token.user_id != current_user.id and not current_user.is_admin):
        abort(404, f"Token {token_id} not found.")
    if not tokens.revoke(token):
        abort(409, f"Token {token_id} was revoked already.")
    audit("token_revoke", target=f"token {token.prefix}... of user {token.user.username}")
    return "", 204
