"""Signing in with a forge account (OAuth authorization code flow) and connecting its repositories."""

import hmac
import logging

from flask import abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user

from app.forges import FORGES, accounts, get_forge
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
def forge_login(forge: str):
    """Send the browser to the forge to grant access, remembering `state` and the PKCE verifier."""
    _configured_forge(forge)
    start = accounts.start_login(forge, _callback_url(forge))
    session["oauth"] = {"forge": forge, "state": start.state, "verifier": start.code_verifier}
    return redirect(start.url)


@web.get("/auth/<forge>/callback")
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
    log.info("user %s signed in with %s", user.id, forge)
    return redirect(url_for("web.connect_repository", forge=forge))


@web.route("/connect/<forge>", methods=["GET", "POST"])
@login_required
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
    repositories = handler.admin_repositories(accounts.access_token(account))
    return render_template("projects/connect.html", forge=handler, repositories=repositories, connected=connected)
