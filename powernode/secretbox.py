"""Encryption at rest for secrets kept on rows (WireGuard hub keys, platform client keys).

Fernet (AES-128-CBC + HMAC) keyed by POWERNODE_ENCRYPTION_KEY; in development a key is made on
first run and kept under the var dir. Production settings refuse to start without one
(see ``powernode.checks``).
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from powernode.errors import ApplicationError


class SecretDecryptError(ApplicationError):
    status_code = 500


@functools.cache
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def _key() -> str:
    key = getattr(settings, "POWERNODE_ENCRYPTION_KEY", "")
    if key:
        return key
    path = settings.VAR_DIR / "encryption_key"
    if not path.exists():
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


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
