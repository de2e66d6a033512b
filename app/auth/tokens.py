"""Personal API tokens: creation, lookup by `Authorization: Bearer`, revocation.

A token is "dci_" followed by 43 URL-safe characters (32 random bytes). Only its
SHA-256 digest is stored. A fast hash is enough here, unlike for passwords:
with 256 random bits there is nothing to guess, so a stolen table of digests
gives nothing away, and a fast hash lets each request find its token by an
indexed lookup.
"""

import hashlib
import re
import secrets
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select

from app.extensions import db
from app.models import ApiToken, User
from app.models._columns import utcnow

PREFIX = "dci_"
TOKEN_FORMAT = re.compile(r"^dci_[A-Za-z0-9_-]{43}$")
DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 366
# Writing last_used_at on every request would add a write to each read; once a minute is precise enough.
LAST_USED_PRECISION = timedelta(seconds=60)


class Scope(StrEnum):
    READ = "read"  # GET requests on what the user may see
    WRITE = "write"  # also trigger, cancel, change projects and secrets
    ADMIN = "admin"  # also users, memberships, every token and the audit log (as far as the user may)


class TokenError(Exception):
    """A bearer token was rejected; the message says why (shown to the client with 401)."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User, name: str, scope: str, expires_in_days: int = DEFAULT_EXPIRY_DAYS) -> tuple[ApiToken, str]:
    """Store a new token of `user` and return it with its plain value, which is never available again.

    Raises ValueError for an unknown scope, an empty name or an expiry outside 1-366 days.
    """
    if scope not in Scope.__members__.values():
        raise ValueError(f"Token scope {scope!r} is invalid: expected read, write or admin.")
    if not name.strip() or len(name) > 100:
        raise ValueError("Token name is missing or longer than 100 characters.")
    if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise ValueError(f"Token expiry of {expires_in_days} days is invalid: expected 1 to {MAX_EXPIRY_DAYS} days.")
    value = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name.strip(), scope=scope, token_hash=digest(value), prefix=value[:12],
                     expires_at=utcnow() + timedelta(days=expires_in_days))
    db.session.add(token)
    db.session.commit()
    return token, value


def authenticate(header: str) -> ApiToken:
    """Return the valid token named by an `Authorization` header value; raise TokenError saying why not."""
    kind, _, value = header.strip().partition(" ")
    if kind.lower() != "bearer" or not value:
        raise TokenError("The Authorization header is malformed: expected 'Bearer <token>'.")
    value = value.strip()
    if not TOKEN_FORMAT.match(value):
        raise TokenError("The API token is malformed: expected 'dci_' followed by 43 characters.")
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(value)))
    if token is None:
        raise TokenError("The API token is unknown. Create a new token.")
    if token.revoked_at is not None:
        raise TokenError(f"The API token {token.prefix}... was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
    now = utcnow()
    if token.expires_at <= now:
        raise TokenError(f"The API token {token.prefix}... expired on {token.expires_at:%Y-%m-%d %H:%M} UTC.")
    if not token.user.active:
        raise TokenError(f"The account {token.user.username!r} of this API token is deactivated.")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        token.last_used_at = now
        db.session.commit()
    return token


def revoke(token: ApiToken) -> bool:
    """Revoke a token; return False if it was revoked already."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    db.session.commit()
    return True


def token_state(token: ApiToken) -> str:
    """Return "active", "revoked" or "expired"."""
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at <= utcnow() else "active"
