"""Forge accounts: OAuth sign-in, tokens encrypted at rest and refreshed, connecting repositories."""

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import select

from app.auth.accounts import find_user
from app.extensions import db
from app.forges import get_forge
from app.forges.base import ForgeError, TokenSet
from app.forges.crypto import decrypt, encrypt, generate_secret
from app.models import ForgeAccount, Project, User
from app.models._columns import utcnow
from app.projects import ProjectError, add_project

log = logging.getLogger(__name__)

# A token this close to its expiry is refreshed before use, so it cannot expire mid-request.
REFRESH_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class LoginStart:
    """The authorization address to send the browser to, and the values the callback checks."""

    url: str
    state: str
    code_verifier: str


def start_login(forge_name: str, redirect_uri: str) -> LoginStart:
    """Return the authorization address with a fresh `state` and PKCE verifier (S256)."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return LoginStart(get_forge(forge_name).authorize_url(redirect_uri, state, challenge), state, verifier)


def finish_login(forge_name: str, code: str, redirect_uri: str, code_verifier: str) -> User:
    """Exchange the code, store the tokens and return the local user, created on first sign-in.

    Raises ForgeError when the forge refuses the code or cannot be reached.
    """
    forge = get_forge(forge_name)
    tokens = forge.exchange_code(code, redirect_uri, code_verifier)
    identity = forge.current_user(tokens.access_token)
    account = db.session.scalar(select(ForgeAccount).where(
        ForgeAccount.forge == forge_name, ForgeAccount.forge_user_id == identity.id))
    if account is None:
        user = User(username=_free_username(identity.login, forge_name), email=identity.email, is_admin=False)
        db.session.add(user)
        db.session.flush()
        account = ForgeAccount(user_id=user.id, forge=forge_name, forge_user_id=identity.id)
        db.session.add(account)
        log.info("user %s created at the first %s sign-in of account %s", user.id, forge_name, identity.id)
    account.login = identity.login
    store_tokens(account, tokens)
    db.session.commit()
    return account.user


# The length of the users table's name column.
MAX_USERNAME = 100


def _free_username(login: str, forge_name: str) -> str:
    # A local account may already use the forge login; the forge's name keeps them apart. A long
    # login is cut before the check, so that the name checked is the name stored.
    for suffix in ("", f"-{forge_name}", f"-{forge_name}-{secrets.token_hex(3)}"):
        candidate = login[:MAX_USERNAME - len(suffix)] + suffix
        if find_user(candidate) is None:
            return candidate
    raise ProjectError(f"Cannot choose a user name for forge login {login!r}")


def store_tokens(account: ForgeAccount, tokens: TokenSet) -> None:
    """Encrypt and store new tokens; a refresh that returns no new refresh token keeps the old one."""
    account.access_token_encrypted = encrypt(tokens.access_token)
    if tokens.refresh_token:
        account.refresh_token_encrypted = encrypt(tokens.refresh_token)
    account.expires_at, account.scopes, account.updated_at = tokens.expires_at, tokens.scopes, utcnow()


def access_token(account: ForgeAccount) -> str:
    """Return a usable access token, refreshing it first when it is about to expire.

    Raises ForgeError when the token expired and cannot be refreshed.
    """
    if account.expires_at is None or account.expires_at - REFRESH_MARGIN > utcnow():
        return decrypt(account.access_token_encrypted)
    if not account.refresh_token_encrypted:
        raise ForgeError(f"The {account.forge} token of {account.login!r} expired and has no refresh token; sign in again")
    tokens = get_forge(account.forge).refresh(decrypt(account.refresh_token_encrypted))
    store_tokens(account, tokens)
    db.session.commit()
    log.info("forge account %s: access token refreshed", account.id)
    return tokens.access_token


def account_of(user: User, forge_name: str) -> ForgeAccount | None:
    return db.session.scalar(select(ForgeAccount).where(ForgeAccount.user_id == user.id, ForgeAccount.forge == forge_name))


def connect_repository(account: ForgeAccount, full_name: str, webhook_base: str) -> tuple[Project, str]:
    """Add `full_name` as a project and create its webhook with a new secret; return both.

    Raises ProjectError when the user may not administer the repository, and ForgeError
    when the forge refuses the webhook (the project is then not kept).
    """
    forge = get_forge(account.forge)
    token = access_token(account)
    repository = next((item for item in forge.admin_repositories(token) if item.full_name == full_name), None)
    if repository is None:
        raise ProjectError(f"Repository {full_name!r} is not among those {account.login!r} administers on {forge.title}")
    project = add_project(_project_name(full_name), repository.clone_url, repository.default_branch,
                          forge=forge.name, forge_repo=full_name)
    secret = generate_secret()
    project.webhook_secret_encrypted, project.forge_account_id = encrypt(secret), account.id
    try:
        forge.create_webhook(token, full_name, webhook_url(webhook_base, forge.name, project.name), secret)
    except ForgeError:
        db.session.delete(project)
        db.session.commit()
        raise
    db.session.commit()
    log.info("project %s connected to %s repository %s", project.id, forge.name, full_name)
    return project, secret


def _project_name(full_name: str) -> str:
    base = full_name.rsplit("/", 1)[-1] or "project"
    for candidate in (base, full_name.replace("/", "-")):
        if db.session.scalar(select(Project.id).where(Project.name == candidate)) is None:
            return candidate
    return f"{full_name.replace('/', '-')}-{secrets.token_hex(3)}"


def webhook_url(base_url: str, forge_name: str, project_name: str) -> str:
    """Return the address a forge sends a project's webhooks to."""
    return f"{base_url.rstrip('/')}/hooks/{forge_name}/{quote(project_name, safe='')}"
