"""Signing in with a forge account (OAuth authorization code flow) and connecting its repositories."""

import hmac
import logging

from flask import abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user

from app.auth.audit import audit
from app.auth.permissions import Action, can, public, requires
from app.extensions import db
from app.forges import FORGES, accounts, get_forge
from app.models import Membership, Role
from app.web import web

log = logging.getLogger(__name__)


def _configured_forge(name: str):
    if name not in FORGES:
        abort(404, f"Forge {name!r} is unknown: expected one of {', '.join(FORGES)}.")
    forge = get_forge(name)
    if not forge.settings.client_id:
        abort(404, f"Sign-in with {forge.title} is not set up: set DENO_CI_{name.upper()}_CLIENT_ID and _CLIENT_SECRET.")
    return forge


def _callback_url(forge_name: str) -> str:
    # The forge compares this with the registered callback, so it is built from BASE_URL, not the request's host.
    return f"{current_app.config['BASE_URL'].rstrip('/')}/auth/{forge_name}/callback"


@web.get("/auth/<forge>/login")
@public
def forge_login(forge: str):
    """Send the browser to the forge to grant access, remembering `state` and the PKCE verifier."""
    _configured_forge(forge)
    start = accounts.start_login(forge, _callback_url(forge))
    session["oauth"] = {"forge": forge, "state": start.state, "verifier": start.code_verifier}
    return redirect(start.url)


@web.get("/auth/<forge>/callback")
@public
def forge_callback(forge: str):
    """Finish the sign-in: check `state`, exchange the code, sign the local user in."""
    _configured_forge(forge)
    pending = session.pop("oauth", None) or {}
    if request.args.get("error"):
        abort(401, f"The forge refused the sign-in: {request.args.get('error_description') or request.args['error']}.")
    state = request.args.get("state", "")
    if pending.get("forge") != forge or not hmac.compare_digest(pending.get("state", ""), state):
        abort(400, "The sign-in state is missing or does not match; start the sign-in again.")
    code = request.args.get("code") or abort(400, "The forge sent no authorization code; start the sign-in again.")
    user = accounts.finish_login(forge, code, _callback_url(forge), pending["verifier"])
    login_user(user)
    audit("sign_in", target=f"user {user.username}", actor=user, detail=f"with {forge}")
    log.info("user %s signed in with %s", user.id, forge)

    # A user created by this sign-in is a member of no project, so they may not create projects yet.
    if not can(user, Action.CREATE_PROJECT):
        return redirect(url_for("web.index"))
    return redirect(url_for("web.connect_repository", forge=forge))


@web.route("/connect/<forge>", methods=["GET", "POST"])
@requires(Action.CREATE_PROJECT)
def connect_repository(forge: str):
    """List the repositories the user administers; a POST connects one and creates its webhook."""
    handler = _configured_forge(forge)
    account = accounts.account_of(current_user, forge)
    if account is None:
        return redirect(url_for("web.forge_login", forge=forge))
    connected = None
    if request.method == "POST":
        repository = request.form.get("repository", "").strip() or abort(422, "Choose a repository to connect.")
        connected, _ = accounts.connect_repository(account, repository, current_app.config["BASE_URL"])
        _make_creator_admin(connected)
    repositories = handler.admin_repositories(accounts.access_token(account))
    return render_template("projects/connect.html", forge=handler, repositories=repositories, connected=connected)


def _make_creator_admin(project) -> None:
    """Make the signed-in user the admin of the project they connected, as the API does, and audit it."""
    if not current_user.is_admin:
        db.session.add(Membership(user_id=current_user.id, project_id=project.id, role=Role.ADMIN))
        db.session.commit()
    audit("project_create", target=f"project {project.name}",
          detail=f"connected from {project.forge} repository {project.forge_repo}")
