"""Line-ending repair for stored messages.

Messages are stored with CRLF line endings. A bare LF gets a CR added (clients and
sloppy senders produce them); the stored size is the size after this fix, so quota,
RFC822.SIZE and BODY[] always agree.
"""

import re

_BARE_LF = re.compile(rb"(?<!\r)\n")


def crlf(data: bytes) -> bytes:
    """Return ``data`` with every bare LF turned into CRLF."""
    if b"\n" not in data:
        return data
    return _BARE_LF.sub(b"\r\n", data)


class CRLFStream:
    """Incremental :func:`crlf` for data arriving in chunks.

    A chunk may end in the middle of a CRLF pair; the state of the last byte is
    carried over so the result equals ``crlf(b"".join(chunks))``.
    """

    __slots__ = ("_last_cr",)

    def __init__(self) -> None:
        self._last_cr = False

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        if self._last_cr and chunk[:1] == b"\n":
            # this LF completes a CRLF pair split across chunks
            out = b"\n" + crlf(chunk[1:])
        else:
            out = crlf(chunk)
        self._last_cr = chunk[-1:] == b"\r"
        return out
