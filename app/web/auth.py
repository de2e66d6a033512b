"""Signing in and out with a local account."""

import logging

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from sqlalchemy import select

from app.auth.passwords import verify_password
from app.extensions import db, login_manager
from app.models import User
from app.web import web

log = logging.getLogger(__name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@web.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form, or sign in with the posted name and password."""
    if request.method == "GET":
        return render_template("auth/login.html")
    username = request.form.get("username", "")
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(user.password_hash, request.form.get("password", "")):
        log.info("failed sign-in for %r from %s", username, request.remote_addr)
        flash("Wrong user name or password.")
        return render_template("auth/login.html", username=username), 401
    login_user(user)
    log.info("user %s signed in", user.id)
    target = request.args.get("next", "")
    return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("web.index"))


@web.post("/logout")
def logout():
    """Sign out."""
    logout_user()
    return redirect(url_for("web.login"))
