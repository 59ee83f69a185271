"""Encryption at rest for secrets kept on rows (WireGuard hub keys, platform client keys).

Fernet (AES-128-CBC + HMAC) keyed by POWERNODE_ENCRYPTION_KEY; in development a key is made on
first run and kept under the var dir (0600, one key however many workers start together). Production
settings refuse to start without one.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from powernode.errors import ApplicationError
from powernode.secretfiles import read_or_create_secret


class SecretDecryptError(ApplicationError):
    status_code = 500


@functools.cache
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def _key() -> str:
    key = getattr(settings, "POWERNODE_ENCRYPTION_KEY", "")
    if key:
        return key
    # development only: production settings refuse to start without the key
    return read_or_create_secret(settings.VAR_DIR / "encryption_key", lambda: Fernet.generate_key().decode())


def encrypt(plaintext: str) -> str:
    return _fernet(_key()).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(_key()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptError(
            "A stored secret cannot be decrypted: POWERNODE_ENCRYPTION_KEY differs from the one it was "
            "written with."
        )
