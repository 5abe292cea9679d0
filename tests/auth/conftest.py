"""Shared fixtures for app.auth tests: credentials with cheap scrypt parameters."""

import pytest

from app.auth.credentials import Credentials

PASSWORD = "correct horse battery staple"


def cheap_credentials(password: str = PASSWORD, **kw: object) -> Credentials:
    """Credentials with a small scrypt cost so tests stay fast."""
    return Credentials.from_password(password, scrypt_n=2**10, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def creds() -> Credentials:
    return cheap_credentials()
