"""Project secrets: encrypted at rest, write-only, and decrypted only for the stages that list them.

Values are Fernet tokens (AES-128-CBC with HMAC-SHA256, from `cryptography`). The
key is `DENO_CI_SECRETS_KEY` when set, otherwise derived from `SECRET_KEY` with
HKDF-SHA256. Setting `DENO_CI_SECRETS_KEY` lets operators rotate the session key
without losing secrets; changing whichever key is in use makes every stored secret
unreadable (they must be set again).
"""

import base64
import logging
import re

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Project, ProjectSecret, Run
from app.models._columns import utcnow

log = logging.getLogger(__name__)

VALID_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
# Names the platform sets in every stage's environment; a secret must not replace them.
RESERVED_NAMES = frozenset({"PATH", "HOME", "CI"})
RESERVED_PREFIXES = ("DENO_",)
# Shorter values turn up by chance in ordinary output, so masking them would garble logs,
# and they are too easy to guess to be worth protecting.
MIN_VALUE_LENGTH = 8
MAX_VALUE_LENGTH = 64 * 1024


class SecretError(ValueError):
    """A secret was rejected; the message names the secret and the rule it broke."""


def _fernet() -> Fernet:
    material = current_app.config.get("SECRETS_KEY") or current_app.config["SECRET_KEY"]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"deno-ci project secrets").derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def validate(name: str, value: str) -> None:
    """Raise SecretError unless `name` is a usable environment variable name and `value` can be masked."""
    if not VALID_NAME.match(name):
        raise SecretError(f"Secret name {name!r} is invalid: use upper-case letters, digits and '_', "
                          "starting with a letter or '_', at most 100 characters.")
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES):
        raise SecretError(f"Secret name {name!r} is reserved for the platform's own variables; choose another.")
    if len(value.strip()) < MIN_VALUE_LENGTH:
        raise SecretError(f"Secret {name!r} is too short to mask safely in logs: it has {len(value.strip())} "
                          f"characters besides leading and trailing white space, expected at least {MIN_VALUE_LENGTH}.")
    if len(value) > MAX_VALUE_LENGTH:
        raise SecretError(f"Secret {name!r} is too long: {len(value)} characters, expected at most {MAX_VALUE_LENGTH}.")


def set_secret(project: Project, name: str, value: str, updated_by: str | None) -> bool:
    """Store or replace a secret; return True if it is new. Raises SecretError for invalid input."""
    validate(name, value)
    ciphertext = _fernet().encrypt(value.encode())
    secret = db.session.scalar(select(ProjectSecret).where(ProjectSecret.project_id == project.id, ProjectSecret.name == name))
    created = secret is None
    if created:
        secret = ProjectSecret(project_id=project.id, name=name)
        db.session.add(secret)
    secret.ciphertext, secret.updated_at, secret.updated_by = ciphertext, utcnow(), updated_by
    db.session.commit()
    return created


def delete_secret(project: Project, name: str) -> bool:
    """Delete a secret; return False if the project has none of that name."""
    secret = db.session.scalar(select(ProjectSecret).where(ProjectSecret.project_id == project.id, ProjectSecret.name == name))
    if secret is None:
        return False
    db.session.delete(secret)
    db.session.commit()
    return True


def list_secrets(project: Project) -> list[ProjectSecret]:
    """Return the project's secrets by name; callers show names and dates, never values."""
    return list(db.session.scalars(select(ProjectSecret).where(ProjectSecret.project_id == project.id).order_by(ProjectSecret.name)))


def _decrypt_all(project_id: int) -> dict[str, str]:
    fernet = _fernet()
    values = {}
    for secret in db.session.scalars(select(ProjectSecret).where(ProjectSecret.project_id == project_id)):
        try:
            values[secret.name] = fernet.decrypt(secret.ciphertext).decode()
        except InvalidToken:
            log.error("project %s: secret %s cannot be decrypted with the current key; set it again", project_id, secret.name)
    return values


def is_fork_pull_request(run: Run) -> bool:
    """Return True for runs of pull requests from forks, which get secrets only once approved."""
    pull_request = (run.event_data or {}).get("pullRequest") or {}
    return bool(pull_request.get("fork"))


def secrets_for_stage(run: Run, stage_options: dict) -> dict[str, str]:
    """Return the decrypted secrets a stage lists in its `secrets` option.

    A run of a fork's pull request gets none until a maintainer approves it
    (`POST /api/v1/runs/<id>/approve`); stages that started before the approval keep running without them.
    """
    wanted = [name for name in stage_options.get("secrets") or [] if isinstance(name, str)]
    if not wanted or (is_fork_pull_request(run) and run.approved_at is None):
        return {}
    values = _decrypt_all(run.project_id)
    return {name: values[name] for name in wanted if name in values}


def values_to_mask(run: Run) -> list[str]:
    """Return every secret value of the run's project, to mask in the run's logs."""
    return list(_decrypt_all(run.project_id).values())
