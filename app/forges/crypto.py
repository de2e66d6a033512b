"""Secrets at rest: webhook secrets and OAuth tokens as Fernet tokens keyed from SECRET_KEY.

NOTE: changing SECRET_KEY makes every stored secret unreadable; re-connect the
projects (or set their webhook secrets again) after rotating it.
"""

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


class SecretDecryptionError(ValueError):
    """A stored secret cannot be decrypted, usually because SECRET_KEY changed."""


def _fernet() -> Fernet:
    # HKDF gives a 32-byte key of its own, so the session-signing key is never used as is.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"deno-ci", info=b"secrets at rest").derive(
        current_app.config["SECRET_KEY"].encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(value: str) -> str:
    """Encrypt `value` for storage."""
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a stored value; raise SecretDecryptionError if SECRET_KEY no longer matches."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise SecretDecryptionError("Cannot decrypt a stored secret: SECRET_KEY changed since it was stored") from error


def generate_secret() -> str:
    """Return a new random webhook secret (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)
