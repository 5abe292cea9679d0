"""Message content: inline bytes for small messages, immutable files for large ones.

A file is written, fsynced, and its directory fsynced *before* the row naming it
is committed, so a committed row always has its file. A crash between the two
leaves an orphan file that :func:`app.store.check.check_account` reports and
:func:`app.store.check.repair_account` removes. Files are never modified after
being written, which is why a COPY may hard-link them.

Layout: ``msg/XY/<random>``, 256 fan-out directories so no directory gets huge.
Names are random rather than the row id because the file must exist before the
row does.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.message.fixup import CRLFStream, crlf
from app.message.summary import Summary, summarize
from app.store import fts

CHUNK = 256 * 1024
# Files up to this size are read into memory once to compute their summary; larger
# ones get a summary of their header section (at most HEADER_LIMIT bytes).
SUMMARY_READ_LIMIT = 32 * 1024 * 1024
HEADER_LIMIT = 256 * 1024


@dataclass(frozen=True, slots=True)
class Prepared:
    """Content ready to be referenced by a row: inline ``data`` or a durable ``file``."""

    data: bytes | None
    file: str | None
    size: int
    summary: Summary
    # Decoded text for the full-text index, extracted here, off the committer. The
    # default is for callers that build a Prepared themselves: they must pass the
    # text (fts.extract) or the message is indexed as empty.
    text: fts.IndexText = fts.EMPTY


def fix_line_endings(data: bytes) -> bytes:
    """:func:`crlf`, with a fast path for the usual case of no bare LF.

    Two ``bytes.count`` calls are C loops (~2 µs for 4 KiB); the regex substitution
    costs ~40 µs for the same message even when it changes nothing.
    """
    if data.count(b"\n") == data.count(b"\r\n"):
        return data
    return crlf(data)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new, linked or removed files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _summarize_file(path: Path, size: int) -> Summary:
    """Summary of a stored file (executor thread).

    :func:`summarize` needs ``bytes`` (it cannot scan an mmap), so a file up to
    SUMMARY_READ_LIMIT is read once, transiently, for it; beyond that only the
    header section is summarized (the structure then describes a single part).
    """
    with open(path, "rb") as f:
        if size <= SUMMARY_READ_LIMIT:
            return summarize(f.read())
        head = f.read(HEADER_LIMIT)
    end = head.find(b"\r\n\r\n")
    return summarize(head if end < 0 else head[: end + 4])


class MessageFiles:
    """The ``msg/`` directory of one account. Methods block: call from an executor."""

    __slots__ = ("_known_dirs", "root")

    def __init__(self, root: Path) -> None:
        self.root = root
        self._known_dirs: set[str] = set()

    def path(self, name: str) -> Path:
        """Absolute path of a stored file."""
        return self.root / name

    def _new_name(self) -> str:
        token = os.urandom(12).hex()
        sub = token[:2]
        if sub not in self._known_dirs:
            d = self.root / sub
            if not d.is_dir():
                self.root.mkdir(exist_ok=True)
                d.mkdir(exist_ok=True)
                fsync_dir(self.root)
            self._known_dirs.add(sub)
        return f"{sub}/{token}"

    def _write(self, chunks: Iterator[bytes]) -> tuple[str, int]:
        name = self._new_name()
        p = self.path(name)
        size = 0
        # O_EXCL: a random name never collides in practice; if it does, fail loudly
        # rather than overwrite a stored message.
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                for chunk in chunks:
                    f.write(chunk)
                    size += len(chunk)
                f.flush()
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            p.unlink(missing_ok=True)
            raise
        os.close(fd)
        fsync_dir(p.parent)
        return name, size

    def write_bytes(self, data: bytes) -> str:
        """Store already CRLF-fixed ``data`` durably; returns the file name."""
        name, _ = self._write(iter((data,)))
        return name

    def write_stream(self, src: BinaryIO, prefix: bytes = b"") -> tuple[str, int]:
        """Store ``prefix`` + ``src`` with bare LFs fixed, streaming; returns name and size."""
        fixer = CRLFStream()

        def chunks() -> Iterator[bytes]:
            if prefix:
                yield fixer.feed(prefix)
            while chunk := src.read(CHUNK):
                yield fixer.feed(chunk)

        return self._write(chunks())

    def link(self, name: str) -> str:
        """Hard-link a stored file under a new name (for COPY); durable on return."""
        new = self._new_name()
        try:
            os.link(self.path(name), self.path(new))
        except OSError:
            # File systems without hard links: copy instead; content is immutable.
            with open(self.path(name), "rb") as src:
                tmp_name, _ = self._write(iter(lambda: src.read(CHUNK), b""))
            return tmp_name
        fsync_dir(self.path(new).parent)
        return new

    def remove(self, names: list[str]) -> None:
        """Remove files whose rows are gone (after commit); missing files are fine."""
        dirs: set[Path] = set()
        for name in names:
            p = self.path(name)
            p.unlink(missing_ok=True)
            dirs.add(p.parent)
        # Not strictly needed (a resurrected file is an orphan that repair removes),
        # but it keeps the disk usage after a crash close to what was acknowledged.
        for d in dirs:
            fsync_dir(d)

    def size(self, name: str) -> int:
        """On-disk size of a stored file."""
        return self.path(name).stat().st_size

    def read(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Read a stored file or a range of it."""
        with open(self.path(name), "rb") as f:
            if offset:
                f.seek(offset)
            return f.read() if length is None else f.read(length)

    def prepare_bytes(self, data: bytes, threshold: int) -> Prepared:
        """CRLF-fix ``data``; small stays inline, large is written as a durable file."""
        fixed = fix_line_endings(data)
        summary = summarize(fixed)
        text = fts.extract(fixed, summary.structure)
        if len(fixed) < threshold:
            return Prepared(fixed, None, len(fixed), summary, text)
        return Prepared(None, self.write_bytes(fixed), len(fixed), summary, text)

    def prepare_path(self, src: Path, threshold: int, prefix: bytes = b"") -> Prepared:
        """Like :meth:`prepare_bytes` for ``prefix`` + a spool file, never holding a large
        one in memory."""
        with open(src, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size + len(prefix) < threshold:
                return self.prepare_bytes(prefix + f.read(), threshold)
            name, size = self.write_stream(f, prefix)
        summary = _summarize_file(self.path(name), size)
        text = fts.extract_file(self.path(name), summary.structure)
        return Prepared(None, name, size, summary, text)
