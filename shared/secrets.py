"""Connection secrets encrypted at rest and on the queues (Fernet: AES-128-CBC + HMAC).

Why Fernet (``cryptography``): authenticated encryption with key rotation support and
no hand-written crypto. The key comes from ``DM_SECRET_KEY``; the single-process mode
creates a key file (mode 0600) in the data folder when none is given.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from shared.errors import ConfigError

KEY_FILE_NAME = "secret.key"


class SecretBox:
    """Encrypts and decrypts short secrets."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError):
            raise ConfigError(
                "DM_SECRET_KEY is not a valid key: it must be 32 url-safe base64-encoded bytes "
                "(create one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from None

    def encrypt(self, plain: str | None) -> str | None:
        if plain is None:
            return None
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        """Raises ConfigError when the token was made with another key."""
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigError("a stored secret cannot be decrypted with the current DM_SECRET_KEY") from None


def resolve_secret_key(secret_key: str, *, data_dir: Path, allow_generate: bool) -> str:
    """The key to use: ``secret_key`` if set, else a local key file when allowed.

    Raises ConfigError when no key is set and generating one is not allowed (the
    distributed form must share one key between services).
    """
    if secret_key:
        SecretBox(secret_key)  # validate early
        return secret_key
    if not allow_generate:
        raise ConfigError(
            "DM_SECRET_KEY is not set: the distributed services must share one key to read connection secrets"
        )
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
