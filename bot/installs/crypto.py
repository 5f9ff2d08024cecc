"""Tokens at rest: Fernet (AES-128-CBC with HMAC-SHA256) from the `cryptography` package."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenCipher:
    """Encrypts with the first key; decrypts with any of them, so keys can be rotated."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, token: str | None) -> str | None:
        """The ciphertext of `token` (None stays None)."""
        return None if token is None else self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, ciphertext: str | None) -> str | None:
        """The token; raises `InvalidToken` when no key opens it."""
        return None if ciphertext is None else self._fernet.decrypt(ciphertext.encode()).decode()

    def reencrypt(self, ciphertext: str | None) -> str | None:
        """The same token encrypted with the first key."""
        return None if ciphertext is None else self._fernet.rotate(ciphertext.encode()).decode()


def is_key(value: str) -> bool:
    """Whether `value` is a Fernet key (32 url-safe base64-encoded bytes)."""
    try:
        Fernet(value.encode())
    except (ValueError, TypeError):
        return False
    return True


__all__ = ["InvalidToken", "TokenCipher", "is_key"]
