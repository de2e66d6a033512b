"""Encrypting channel secrets at rest with a Fernet key derived from the app's SECRET_KEY.

HKDF-SHA256 turns SECRET_KEY into a 32-byte key for this one purpose (the `info`
string), so the same SECRET_KEY signs sessions without the two uses sharing a key.
Changing SECRET_KEY makes stored secrets unreadable: deliveries then fail with a
message asking to enter them again.
"""

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE = b"deno-ci notification channel secrets v1"


class SecretsError(Exception):
    """Stored channel secrets could not be decrypted."""


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secrets(secret_key: str, values: dict) -> str:
    """Return `values` as JSON encrypted into one Fernet token."""
    return _fernet(secret_key).encrypt(json.dumps(values).encode()).decode()


def decrypt_secrets(secret_key: str, token: str | None) -> dict:
    """Return the values stored by encrypt_secrets; raise SecretsError if the key does not fit."""
    if not token:
        return {}
    try:
        return json.loads(_fernet(secret_key).decrypt(token.encode()))
    except InvalidToken as error:
        raise SecretsError(
            "Cannot decrypt the channel's secrets: SECRET_KEY changed since they were saved. "
            "Enter the channel's secrets again."
        ) from error
