"""Message data of one SMTP transaction: in memory while small, then a file.

DATA and BDAT content arrive in chunks. Up to ``memory_limit`` octets stay in
memory (most messages); beyond that everything goes to a temporary file in the
spool directory, so several 50 MiB messages at once never sit in memory. The
store copies (and fsyncs) the content when delivering; the spool file itself is
scratch and is removed when the transaction ends.
"""

import os
import secrets
from pathlib import Path
from typing import BinaryIO

HEAD_LIMIT = 256 * 1024  # header inspection reads at most this much


class Spool:
    def __init__(self, directory: Path, memory_limit: int = 256 * 1024) -> None:
        self.directory = directory
        self.memory_limit = memory_limit
        self._buf = bytearray()
        self._file: BinaryIO | None = None
        self._head = b""
        self.path: Path | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._file is None:
            self._buf += data
            if len(self._buf) <= self.memory_limit:
                return
            self.path, fd = _create_unique(Path(self.directory), "smtp-")
            self._file = os.fdopen(fd, "wb")
            self._head = bytes(self._buf[:HEAD_LIMIT])
            data = bytes(self._buf)
            self._buf = bytearray()
        self._file.write(data)

    def content(self) -> bytes | Path:
        """The complete message: bytes, or the path of the flushed spool file."""
        if self._file is None:
            return bytes(self._buf)
        self._file.flush()
        assert self.path is not None
        return self.path

    def head(self) -> bytes:
        """The start of the message (enough for its header in all sane cases)."""
        if self._file is None:
            return bytes(self._buf[:HEAD_LIMIT])
        return self._head

    def discard(self) -> None:
        self._buf = bytearray()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def _create_unique(directory: Path, prefix: str) -> tuple[Path, int]:
    """Create a new private file with a random name in ``directory`` (like
    ``tempfile.mkstemp``, without loading that module's dependencies)."""
    for _ in range(100):
        path = directory / f"{prefix}{secrets.token_hex(8)}"
        try:
            return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused name in {directory}")
