"""Fixtures: a store runtime and a freshly created account in tmp_path."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.store import AccountStore, StoreRuntime


@pytest.fixture
async def runtime() -> AsyncIterator[StoreRuntime]:
    rt = StoreRuntime(workers=2)
    yield rt
    await rt.close()


@pytest.fixture
async def store(runtime: StoreRuntime, tmp_path: Path) -> AsyncIterator[AccountStore]:
    s = await AccountStore.open(tmp_path / "acct", name="mjl", runtime=runtime)
    yield s
    await s.close(force=True)


def message(n: int = 0, body_size: int = 100, *, subject: str = "test") -> bytes:
    """A small valid message with CRLF line endings."""
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <m{n}@example.org>\r\n\r\n".encode()
        + b"x" * body_size
        + b"\r\n"
    )
