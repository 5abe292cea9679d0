"""The MIME tree of a message (RFC 2045, RFC 2046 5.1, RFC 2183, RFC 3501 BODYSTRUCTURE).

:func:`parse` walks the message once: boundaries of every enclosing multipart
are matched together while scanning forward, so nested multiparts and embedded
messages (message/rfc822 with an identity transfer encoding) are parsed in the
same pass over the bytes, with offsets into the original message.
"""

import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass

from app.message.encoded import decode_base64, parse_content_type, parse_disposition
from app.message.envelope import Envelope, envelope_from_header
from app.message.errors import StructureError
from app.message.headers import Header, scan

DEFAULT_MAX_DEPTH = 50
DEFAULT_MAX_PARTS = 10_000

Params = tuple[tuple[str, str], ...]
_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_TEXT_PLAIN = ("text", "plain")
_CONTENT_FIELDS = (
    "content-type",
    "content-transfer-encoding",
    "content-id",
    "content-description",
    "content-disposition",
    "content-language",
    "content-location",
    "content-md5",
)
_RFC822 = ("message", "rfc822")


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity: the whole message, a part of a multipart, or an embedded message.

    Type names, the transfer encoding and the disposition are lower-case;
    parameter names are lower-case, values decoded (RFC 2231, encoded words).
    Offsets index the raw message: ``data[header_start:body_start]`` is the
    header (with its blank line), ``data[body_start:end]`` the body. For an
    embedded message whose transfer encoding is not identity (base64
    message/global), the offsets of ``message`` index the decoded body instead.
    ``lines`` is counted for text/* and message/* (IMAP body-fld-lines), else 0.
    ``envelope`` is set on a message's root part (top level and ``message``).
    """

    type: str
    subtype: str
    params: Params
    id: str
    description: str
    encoding: str
    disposition: str
    disposition_params: Params
    language: tuple[str, ...]
    location: str
    md5: str
    header_start: int
    body_start: int
    end: int
    lines: int
    parts: tuple["Part", ...] = ()
    message: "Part | None" = None
    envelope: Envelope | None = None

    @property
    def size(self) -> int:
        """Body size in octets, as transferred (IMAP body-fld-octets)."""
        return self.end - self.body_start

    @property
    def media_type(self) -> str:
        """``type/subtype``, lower-case."""
        return f"{self.type}/{self.subtype}"

    def param(self, name: str) -> str | None:
        """A Content-Type parameter by (case-insensitive) name."""
        name = name.lower()
        return next((v for k, v in self.params if k == name), None)

    def filename(self) -> str | None:
        """The attachment file name from Content-Disposition, else Content-Type ``name``."""
        n = next((v for k, v in self.disposition_params if k == "filename"), None)
        return n if n is not None else self.param("name")

    def walk(self) -> Iterator["Part"]:
        """This part and all parts below it (embedded messages included), depth first."""
        yield self
        for p in self.parts:
            yield from p.walk()
        if self.message is not None:
            yield from self.message.walk()

    def to_json(self) -> str:
        """Serialise the tree (with envelopes) to compact JSON; see :meth:`from_json`."""
        return json.dumps(_to_obj(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Part":
        """Rebuild a tree from :meth:`to_json` output; raises :class:`StructureError`."""
        try:
            return _from_obj(json.loads(text))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
            raise StructureError(text[:100], f"bad structure json: {e}") from None


def _to_obj(p: Part) -> dict[str, object]:
    o: dict[str, object] = {"t": p.type, "s": p.subtype, "o": [p.header_start, p.body_start, p.end]}
    if p.params:
        o["p"] = p.params
    for key, val in (
        ("id", p.id),
        ("de", p.description),
        ("e", p.encoding),
        ("d", p.disposition),
        ("loc", p.location),
        ("md5", p.md5),
    ):
        if val:
            o[key] = val
    if p.disposition_params:
        o["dp"] = p.disposition_params
    if p.language:
        o["la"] = p.language
    if p.lines:
        o["n"] = p.lines
    if p.parts:
        o["c"] = [_to_obj(c) for c in p.parts]
    if p.message is not None:
        o["m"] = _to_obj(p.message)
    if p.envelope is not None:
        o["env"] = p.envelope.to_list()
    return o


def _str(o: dict[str, object], key: str) -> str:
    v = o.get(key, "")
    if not isinstance(v, str):
        raise TypeError(f"{key}: string expected")
    return v


def _params(o: dict[str, object], key: str) -> Params:
    v = o.get(key, [])
    if not isinstance(v, list):
        raise TypeError(f"{key}: list expected")
    out = []
    for kv in v:
        if not (isinstance(kv, list) and len(kv) == 2 and all(isinstance(x, str) for x in kv)):
            raise TypeError(f"{key}: pair expected")
        out.append((str(kv[0]), str(kv[1])))
    return tuple(out)


def _from_obj(o: object) -> Part:
    if not isinstance(o, dict):
        raise TypeError("object expected")
    off = o["o"]
    if not (isinstance(off, list) and len(off) == 3 and all(type(x) is int for x in off)):
        raise TypeError("offsets expected")
    lang = o.get("la", [])
    lines = o.get("n", 0)
    children = o.get("c", [])
    env = o.get("env")
    if not isinstance(lang, list) or not all(isinstance(x, str) for x in lang):
        raise TypeError("language list expected")
    if type(lines) is not int or not isinstance(children, list):
        raise TypeError("bad lines or parts")
    if env is not None and not isinstance(env, list):
        raise TypeError("envelope list expected")
    return Part(
        _str(o, "t"),
        _str(o, "s"),
        _params(o, "p"),
        _str(o, "id"),
        _str(o, "de"),
        _str(o, "e"),
        _str(o, "d"),
        _params(o, "dp"),
        tuple(str(x) for x in lang),
        _str(o, "loc"),
        _str(o, "md5"),
        off[0],
        off[1],
        off[2],
        lines,
        tuple(_from_obj(c) for c in children),
        _from_obj(o["m"]) if "m" in o else None,
        Envelope.from_list(env) if env is not None else None,
    )


def _first_word(v: str | None) -> str:
    if not v:
        return ""
    w = v.split(None, 1)
    return w[0].strip('"').lower() if w else ""


class _Head:
    """Header-derived fields of an entity being parsed (internal, mutable)."""

    __slots__ = (
        "body", "cd", "cid", "desc", "dparams", "enc", "env", "hstart", "lang", "loc", "md5",
        "params", "st", "t",
    )  # fmt: skip

    def __init__(self, hstart: int, body: int, t: str, st: str, params: Params) -> None:
        self.hstart = hstart
        self.body = body
        self.t = t
        self.st = st
        self.params = params
        self.cid = self.desc = self.enc = self.cd = self.loc = self.md5 = ""
        self.lang: tuple[str, ...] = ()
        self.dparams: Params = ()
        self.env: Envelope | None = None

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)


class _Parser:
    """Single forward pass over ``data`` matching a stack of boundaries."""

    __slots__ = ("data", "max_depth", "max_parts", "nparts", "root_header", "strict")

    def __init__(self, data: bytes, strict: bool, max_depth: int, max_parts: int) -> None:
        self.data = data
        self.strict = strict
        self.max_depth = min(max_depth, 200)  # recursion stays well inside Python's limit
        self.max_parts = max_parts
        self.nparts = 0
        self.root_header: Header | None = None

    def problem(self, reason: str, offset: int, limit: str = "") -> None:
        if self.strict:
            raise StructureError(reason, reason, limit=limit, offset=offset)

    def match(self, q: int, bounds: tuple[bytes, ...]) -> tuple[int, bool] | None:
        """Which boundary (innermost first) the line at ``q`` is, and whether it closes."""
        data = self.data
        for k in range(len(bounds) - 1, -1, -1):
            b = bounds[k]
            if not data.startswith(b, q):
                continue
            a = q + len(b)
            if data.startswith(b"--", a):  # RFC 2046 5.1.1 close-delimiter
                return k, True
            c = data[a : a + 1]
            if c in (b"\r", b"\n", b""):
                return k, False
            if c in (b" ", b"\t"):  # RFC 2046 5.1.1: transport-padding; mox
                nl = data.find(b"\n", a)  # also insists on it to tell nested boundaries apart
                if not data[a : len(data) if nl < 0 else nl].strip():
                    return k, False
        return None

    def next_bound(self, pos: int, bounds: tuple[bytes, ...]) -> tuple[int, int, bool]:
        """The next boundary line at or after line start ``pos``: (offset, index, close).

        Index -1 means none before the end of the data (offset is then the length).
        """
        data = self.data
        n = len(data)
        if not bounds:
            return n, -1, False
        q = pos
        if not data.startswith(b"--", q):
            q = data.find(b"\n--", q)
            if q < 0:
                return n, -1, False
            q += 1
        while True:
            r = self.match(q, bounds)
            if r is not None:
                return q, r[0], r[1]
            q = data.find(b"\n--", q + 2)
            if q < 0:
                return n, -1, False
            q += 1

    def end_before(self, q: int, k: int, body_start: int) -> int:
        """Body end for a part followed by boundary line ``q``: the CRLF before it
        belongs to the boundary (RFC 2046 5.1.1)."""
        if k < 0:
            return len(self.data)
        data = self.data
        e = q
        if e > body_start and data[e - 1] == 10:
            e -= 1
            if e > body_start and data[e - 1] == 13:
                e -= 1
        return e

    def build(
        self, h: _Head, end: int, parts: tuple[Part, ...] = (), message: Part | None = None
    ) -> Part:
        lines = 0
        if (h.t == "text" or h.t == "message") and end > h.body:
            # IMAP body-fld-lines: number of lines of the (encoded) body
            data = self.data
            lines = data.count(b"\n", h.body, end) + (data[end - 1] != 10)
        return Part(
            h.t, h.st, h.params, h.cid, h.desc, h.enc, h.cd, h.dparams, h.lang, h.loc, h.md5,
            h.hstart, h.body, end, lines, parts, message, h.env,
        )  # fmt: skip

    def head(
        self, hstart: int, bounds: tuple[bytes, ...], default: tuple[str, str], is_message: bool
    ) -> tuple[_Head, bool]:
        """Scan an entity's header and interpret its Content-* fields."""
        stop = (lambda p: self.match(p, bounds) is not None) if bounds else None
        header, stopped = scan(self.data, hstart, len(self.data), stop)
        if self.root_header is None:
            self.root_header = header
        self.nparts += 1
        h = _Head(hstart, header.body, default[0], default[1], ())
        ct, cte, cid, desc, cd, lang, loc, md5 = header.pick(_CONTENT_FIELDS)
        if ct:
            r = parse_content_type(ct)
            if r is None:
                self.problem("bad content-type", hstart)
                h.t, h.st = "application", "octet-stream"
            else:
                h.t, h.st, h.params = r
        if cte:
            h.enc = _first_word(cte)
        if cd:
            h.cd, h.dparams = parse_disposition(cd)
        if lang:
            h.lang = tuple(x.strip() for x in lang.split(",") if x.strip())
        h.cid = cid or ""
        h.desc = desc or ""
        h.loc = loc or ""
        h.md5 = md5 or ""
        if is_message:
            h.env = envelope_from_header(header)
        return h, stopped

    def entity(
        self,
        hstart: int,
        bounds: tuple[bytes, ...],
        depth: int,
        default: tuple[str, str],
        is_message: bool,
    ) -> tuple[Part, int, int, bool]:
        """Parse the entity at ``hstart``; returns it and the boundary that ended it."""
        h, stopped = self.head(hstart, bounds, default, is_message)
        if stopped:
            self.problem("header ends at a boundary", h.body)
            q, k, close = self.next_bound(h.body, bounds)
            return self.build(h, self.end_before(q, k, h.body)), q, k, close
        if h.t == "multipart":
            return self.multipart(h, bounds, depth)
        embed = h.t == "message" and h.st in ("rfc822", "global")
        if embed and depth >= self.max_depth:
            self.problem("nesting too deep", hstart, "depth")
            embed = False
        if embed and h.enc in _IDENTITY:
            inner, q, k, close = self.entity(h.body, bounds, depth + 1, _TEXT_PLAIN, True)
            return self.build(h, inner.end, message=inner), q, k, close
        q, k, close = self.next_bound(h.body, bounds)
        end = self.end_before(q, k, h.body)
        message = self.embedded(h, end) if embed else None
        return self.build(h, end, message=message), q, k, close

    def embedded(self, h: _Head, end: int) -> Part | None:
        """An embedded message in a non-identity transfer encoding, parsed separately."""
        if h.enc not in ("base64", "quoted-printable") or end <= h.body:
            return None
        raw = self.data[h.body : end]
        body = decode_base64(raw) if h.enc == "base64" else binascii.a2b_qp(raw)
        sub = _Parser(body, self.strict, 1, max(self.max_parts - self.nparts, 1))
        inner = sub.entity(0, (), 0, _TEXT_PLAIN, True)[0]
        self.nparts += sub.nparts
        return inner

    def multipart(
        self, h: _Head, bounds: tuple[bytes, ...], depth: int
    ) -> tuple[Part, int, int, bool]:
        boundary = h.param("boundary")
        body = h.body
        if not boundary or depth >= self.max_depth:
            if boundary:
                self.problem("nesting too deep", h.hstart, "depth")
            else:
                self.problem("multipart without boundary", h.hstart)
            q, k, close = self.next_bound(body, bounds)
            h.t, h.st = "application", "octet-stream"  # as mox: it cannot be split
            return self.build(h, self.end_before(q, k, body)), q, k, close
        data = self.data
        n = len(data)
        stack = (*bounds, b"--" + boundary.encode("utf-8"))
        top = len(stack) - 1
        child_default = _RFC822 if h.st == "digest" else _TEXT_PLAIN  # RFC 2046 5.1.5
        children: list[Part] = []
        q, k, close = self.next_bound(body, stack)  # the preamble is skipped
        while k == top and not close:
            nl = data.find(b"\n", q)
            hstart = n if nl < 0 else nl + 1
            if self.nparts >= self.max_parts:
                self.problem("too many parts", hstart, "parts")
                q, k, close = self.next_bound(hstart, stack)
                continue
            child, q, k, close = self.entity(hstart, stack, depth + 1, child_default, False)
            children.append(child)
        if k == top:
            nl = data.find(b"\n", q)  # the epilogue runs to the enclosing boundary
            q, k, close = self.next_bound(n if nl < 0 else nl + 1, bounds)
        else:
            self.problem("missing close-delimiter", q)
        end = self.end_before(q, k, body)
        if not children:
            self.problem("multipart without parts", h.hstart)
            h.t, h.st = "application", "octet-stream"
            return self.build(h, end), q, k, close
        return self.build(h, end, tuple(children)), q, k, close


def parse_strict(
    data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, max_parts: int = DEFAULT_MAX_PARTS
) -> Part:
    """Parse a message, raising :class:`StructureError` on malformed structure or limits."""
    return _Parser(data, True, max_depth, max_parts).entity(0, (), 0, _TEXT_PLAIN, True)[0]


def parse(
    data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, max_parts: int = DEFAULT_MAX_PARTS
) -> Part:
    """Parse a message into its MIME tree, best effort; never raises.

    Missing boundaries, truncation and bad headers give the most plausible tree;
    beyond ``max_depth`` nesting parts are kept unsplit, beyond ``max_parts``
    further parts are skipped.
    """
    return parse_with_header(data, max_depth=max_depth, max_parts=max_parts)[0]


def parse_with_header(
    data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, max_parts: int = DEFAULT_MAX_PARTS
) -> tuple[Part, Header]:
    """As :func:`parse`, also returning the message's top-level header; never raises."""
    p = _Parser(data, False, max_depth, max_parts)
    try:
        part = p.entity(0, (), 0, _TEXT_PLAIN, True)[0]
        assert p.root_header is not None
        return part, p.root_header
    except Exception:  # a bug must not lose a message: fall back to one opaque part
        header, _ = scan(data)
        try:
            env = envelope_from_header(header)
        except Exception:
            env = None
        return Part(
            "application", "octet-stream", (), "", "", "", "", (), (), "", "",
            0, header.body, len(data), 0, envelope=env,
        ), header  # fmt: skip
