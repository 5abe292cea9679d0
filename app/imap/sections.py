"""Body sections of FETCH: BODY[section] and BINARY[section] (RFC 9051 6.4.5, RFC 3516).

A section is resolved against the cached MIME tree to a byte range of the stored
message, so only that range is read (``AccountStore.read_range``): a header, a
part, or ``<partial>`` of the whole message never reads the rest. The exception is
a message embedded in a base64/quoted-printable part (message/global): its tree's
offsets index the decoded body of its container, which is read and decoded.
"""

import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.imap.commands import Partial, Section
from app.message.encoded import decode_base64
from app.message.part import Part

Reader = Callable[[int, int], Awaitable[bytes]]  # (offset, length) of the stored message

IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
KNOWN_CTE = IDENTITY | {"base64", "quoted-printable"}


class NoSuchPart(Exception):
    """The section names a part the message does not have (answered with NIL)."""


class UnknownCTE(Exception):
    """BINARY of a part in a transfer encoding we cannot decode (RFC 3516 4.3)."""


@dataclass(frozen=True, slots=True)
class Located:
    """A part and where its offsets point: the stored message (``data`` None) or
    ``data``, the decoded body of an enclosing base64/QP message part."""

    part: Part
    data: bytes | None


class Source:
    """Reads ranges of one stored message, or of a decoded container buffer."""

    def __init__(self, read: Reader) -> None:
        self._read = read

    async def get(self, loc: Located | None, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` in the coordinates of ``loc`` (None: the stored message)."""
        end = max(start, end)
        if loc is not None and loc.data is not None:
            return loc.data[start:end]
        return await self._read(start, end - start)

    async def get_partial(
        self, loc: Located | None, start: int, end: int, partial: Partial | None
    ) -> bytes:
        """Like :meth:`get`, reading only the ``<offset.count>`` window when given."""
        if partial is None:
            return await self.get(loc, start, end)
        a = min(start + partial.offset, end)
        b = min(a + partial.count, end)
        return await self.get(loc, a, b)

    async def embedded(self, loc: Located) -> Located:
        """The embedded message of a message/rfc822 (or global) part."""
        p = loc.part
        if p.message is None:
            raise NoSuchPart()
        if p.encoding in IDENTITY:
            return Located(p.message, loc.data)
        raw = await self.get(loc, p.body_start, p.end)
        return Located(p.message, decode(raw, p.encoding))


def decode(raw: bytes, encoding: str) -> bytes:
    """Undo a transfer encoding; raises UnknownCTE for one we do not know."""
    enc = encoding.lower()
    if enc in IDENTITY:
        return raw
    if enc == "base64":
        return decode_base64(raw)
    if enc == "quoted-printable":
        return binascii.a2b_qp(raw)
    raise UnknownCTE(encoding)


async def resolve(src: Source, root: Part, path: tuple[int, ...]) -> Located:
    """The part at an IMAP part path (RFC 9051 6.4.5 part specifiers).

    A message (the top level, or one embedded in a message/rfc822 part) that is not
    multipart has exactly one part, ``1``, its body.
    """
    loc = Located(root, None)
    at_message = True
    for n in path:
        p = loc.part
        if not at_message and not p.parts:
            if p.message is None:
                raise NoSuchPart()
            loc = await src.embedded(loc)
            p = loc.part
        if p.parts:
            if not 1 <= n <= len(p.parts):
                raise NoSuchPart()
            loc = Located(p.parts[n - 1], loc.data)
        elif n != 1:
            raise NoSuchPart()
        at_message = False
    return loc


def filter_header(block: bytes, names: tuple[str, ...], keep: bool) -> bytes:
    """HEADER.FIELDS (``keep``) or HEADER.FIELDS.NOT: the selected fields, each with
    its continuation lines, followed by the blank line (RFC 9051 6.4.5)."""
    wanted = {n.lower() for n in names}
    out: list[bytes] = []
    take = False
    for line in block.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if take:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("latin-1").lower()
        take = (name in wanted) == keep
        if take:
            out.append(line if line.endswith(b"\n") else line + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


async def body_section(src: Source, root: Part, sec: Section, partial: Partial | None) -> bytes:
    """The octets of ``BODY[section]<partial>``; raises NoSuchPart."""
    loc = Located(root, None)
    if sec.part:
        loc = await resolve(src, root, sec.part)
        if sec.text is None:
            return await src.get_partial(loc, loc.part.body_start, loc.part.end, partial)
        if sec.text == "MIME":
            p = loc.part
            return await src.get_partial(loc, p.header_start, p.body_start, partial)
        loc = await src.embedded(loc)
    elif sec.text is None:
        return await src.get_partial(loc, 0, root.end, partial)
    m = loc.part
    if sec.text == "HEADER":
        return await src.get_partial(loc, m.header_start, m.body_start, partial)
    if sec.text == "TEXT":
        return await src.get_partial(loc, m.body_start, m.end, partial)
    block = await src.get(loc, m.header_start, m.body_start)
    data = filter_header(block, sec.headers, sec.text == "HEADER.FIELDS")
    return slice_partial(data, partial)


def slice_partial(data: bytes, partial: Partial | None) -> bytes:
    """``data`` cut to ``<offset.count>`` (empty when the offset is past the end)."""
    if partial is None:
        return data
    return data[partial.offset : partial.offset + partial.count]


async def binary_section(src: Source, root: Part, path: tuple[int, ...]) -> bytes:
    """Decoded content of ``BINARY[path]`` (RFC 3516 4.2); raises NoSuchPart, UnknownCTE."""
    if not path:
        return await src.get(Located(root, None), 0, root.end)
    loc = await resolve(src, root, path)
    p = loc.part
    if p.encoding.lower() not in KNOWN_CTE:
        raise UnknownCTE(p.encoding)
    raw = await src.get(loc, p.body_start, p.end)
    return decode(raw, p.encoding)


async def binary_size(src: Source, root: Part, path: tuple[int, ...]) -> int:
    """``BINARY.SIZE[path]``: the decoded size, computed without reading identity parts."""
    if not path:
        return root.end
    loc = await resolve(src, root, path)
    p = loc.part
    if p.encoding.lower() in IDENTITY:
        return p.size
    return len(await binary_section(src, root, path))
