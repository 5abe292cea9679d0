"""The account lock: one process writes an account directory at a time."""

import fcntl
import os
from pathlib import Path

from app.store.errors import AccountInUse


def lock_account(directory: Path) -> int:
    """Take the exclusive lock ``DIR/lock``; returns the fd to close for release.

    flock is released by the kernel when the process dies, so a crash never leaves
    a stale lock behind. Raises :class:`AccountInUse` if another holder exists.
    """
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AccountInUse(str(directory)) from None
    return fd
