"""Spool files of APPENDs in progress: large literals go to ``data/tmp`` before the
store takes them; a crash can leave some behind, removed at the next start."""

import contextlib
from pathlib import Path

SPOOL_PREFIX = "imap-append-"


def remove_stale_spools(directory: Path) -> int:
    """Remove spool files left by a crash (server start); returns how many."""
    n = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in directory.iterdir():
            if entry.name.startswith(SPOOL_PREFIX):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    n += 1
    return n
