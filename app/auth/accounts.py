"""Local accounts: invitations with a one-time password, deactivation, the administrator flag."""

import re
import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.auth.passwords import hash_password
from app.extensions import db
from app.models import User

VALID_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
VALID_EMAIL = re.compile(r"^[^\s@<>\"']{1,200}@[^\s@<>\"']{1,98}$")
MIN_PASSWORD_LENGTH = 12


class AccountError(ValueError):
    """An account change was rejected; the message names the value and the rule."""


class UserExistsError(AccountError):
    """A user of that name, in any case, exists already."""


def find_user(username: str) -> User | None:
    """Return the user whose name matches `username` in any case, or None."""
    if "\x00" in username:
        # PostgreSQL text cannot hold NUL, and no user name contains one.
        return None
    return db.session.scalar(select(User).where(func.lower(User.username) == func.lower(username[:100])))


def _taken_error(username: str, existing: User) -> UserExistsError:
    return UserExistsError(f"User name {username!r} is taken by user {existing.username!r} (id {existing.id}): "
                           "user names are unique regardless of case. Choose another name.")


def invite_user(username: str, email: str | None = None, is_admin: bool = False) -> tuple[User, str]:
    """Create a user with a random one-time password; return the user and the password to hand over."""
    if not VALID_USERNAME.match(username):
        raise AccountError(f"User name {username[:100]!r} is invalid: use up to 100 ASCII letters, digits, '.', '_' and '-'.")
    if email and not VALID_EMAIL.match(email):
        raise AccountError(f"Email address {email[:100]!r} is invalid.")
    existing = find_user(username)
    if existing is not None:
        raise _taken_error(username, existing)
    password = secrets.token_urlsafe(15)
    user = User(username=username, email=email or None, password_hash=hash_password(password), is_admin=is_admin, active=True,
                password_must_change=True)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        # The unique index rejected the insert because another request created a look-alike name after the check.
        db.session.rollback()
        existing = find_user(username)
        if existing is None:
            raise
        raise _taken_error(username, existing) from None
    return user, password


def update_user(user: User, actor: User, *, active: bool | None = None, is_admin: bool | None = None,
                email: str | None = None) -> list[str]:
    """Change a user's state; return the changes made as phrases for the audit log.

    Raises AccountError when administrators would lock themselves out.
    """
    if user.id == actor.id and (active is False or is_admin is False):
        raise AccountError("You cannot deactivate yourself or remove your own administrator flag; ask another administrator.")
    if email is not None and email and not VALID_EMAIL.match(email):
        raise AccountError(f"Email address {email[:100]!r} is invalid.")
    changes = []
    if active is not None and active != user.active:
        user.active = active
        changes.append("activated" if active else "deactivated")
    if is_admin is not None and is_admin != user.is_admin:
        user.is_admin = is_admin
        changes.append("made administrator" if is_admin else "administrator flag removed")
    if email is not None and email != (user.email or ""):
        user.email = email or None
        changes.append("email changed")
    db.session.commit()
    return changes


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password after checking the current one; raise AccountError otherwise."""
    from app.auth.passwords import verify_password

    if not verify_password(user.password_hash, current):
        raise AccountError("The current password is wrong.")
    if len(new) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The new password has {len(new)} characters; use at least {MIN_PASSWORD_LENGTH}.")
    if new == current:
        raise AccountError("The new password is the current one; choose another.")
    if not new.strip():
        raise AccountError("The new password is only spaces; choose one with other characters.")
    user.password_hash = hash_password(new)
    user.password_must_change = False
    db.session.commit()
