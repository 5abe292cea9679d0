"""RFC example traces (imap-codec's trace.rs): every client line parses, server lines can be produced."""

import re
from pathlib import Path

import pytest

from app.imap import protocol as P
from app.imap.commands import Command

from .helpers import events

TRACES = (Path(__file__).parent.parent / "data" / "imap" / "imap-codec-rfc-traces.txt").read_text(
    "utf-8"
)
LINES = [ln for ln in TRACES.splitlines() if ln.startswith(("C: ", "S: "))]
CLIENT = [ln[3:] for ln in LINES if ln.startswith("C: ")]
SERVER = [ln[3:] for ln in LINES if ln.startswith("S: ")]


def test_trace_file_is_complete() -> None:
    assert len(LINES) == 191


@pytest.mark.parametrize("line", CLIENT)
def test_client_line_parses_to_a_command(line: str) -> None:
    evs = events(line.encode() + b"\r\n")
    assert len(evs) == 1 and isinstance(evs[0], Command), evs
    assert evs[0].tag == line.split(" ", 1)[0]


_STATUS = re.compile(r"^(\S+) (OK|NO|BAD|BYE|PREAUTH)(?: \[([^\]]+)\])? (.*)$")


def render(line: str) -> bytes | None:
    """Produce ``line`` with the formatter from its parts; None for forms we do not format."""
    b = P.ResponseBuilder()
    if line.startswith("+ "):
        return P.continuation(line[2:])
    m = _STATUS.match(line)
    if m:
        tag, status, code, text = m.groups()
        c = None
        if code:
            name, _, args = code.partition(" ")
            c = P.Code(name, args.encode())
        return P.status_line(None if tag == "*" else tag, status, text, c)
    words = line.split(" ")
    assert words[0] == "*"
    kind = words[1]
    if kind in ("CAPABILITY", "ENABLED"):
        return (
            b.capability(words[2:]) if kind == "CAPABILITY" else b.enabled(words[2:])
        ).getvalue()
    if kind in ("SEARCH", "SORT"):
        return b.search([int(w) for w in words[2:]], kind=kind).getvalue()
    if kind == "FLAGS":
        return b.flags(" ".join(words[2:]).strip("()").split()).getvalue()
    if kind in ("LIST", "LSUB"):
        m2 = re.match(r'^\* (LIST|LSUB) \(([^)]*)\) "(.)" (.*)$', line)
        assert m2
        name = m2.group(4)
        name = name[1:-1] if name.startswith('"') else name
        return b.list_item(m2.group(2).split(), m2.group(3), name, kind=kind).getvalue()
    if kind == "STATUS":
        m3 = re.match(r"^\* STATUS (\S+) \((.*)\)$", line)
        assert m3
        it = m3.group(2).split()
        return b.status(
            m3.group(1), [(it[i], int(it[i + 1])) for i in range(0, len(it), 2)]
        ).getvalue()
    if len(words) < 3:
        return None
    if words[2] in ("EXISTS", "RECENT", "EXPUNGE"):
        n = int(words[1])
        fn = {"EXISTS": b.exists, "RECENT": b.recent, "EXPUNGE": b.expunge}[words[2]]
        return fn(n).getvalue()
    if words[2] == "FETCH":
        m4 = re.match(r"^\* (\d+) FETCH \((.*)\)$", line)
        assert m4
        items: list[tuple[str, bytes | int]] = []
        rest = m4.group(2)
        while rest:
            mm = re.match(r"^(FLAGS) \(([^)]*)\) ?|^(UID|RFC822\.SIZE) (\d+) ?", rest)
            if not mm:
                return None
            if mm.group(1):
                items.append(("FLAGS", P.flag_list(mm.group(2).split())))
            else:
                items.append((mm.group(3), int(mm.group(4))))
            rest = rest[mm.end() :]
        return b.fetch(int(m4.group(1)), items).getvalue()
    return None


def test_server_lines_can_be_produced_by_formatter() -> None:
    produced = 0
    skipped = []
    for line in SERVER:
        got = render(line)
        if got is None:
            skipped.append(line)
            continue
        assert got == line.encode() + b"\r\n", line
        produced += 1
    # Only THREAD responses (RFC 5256, not supported) are outside the formatter.
    assert all(s.startswith("* THREAD") for s in skipped), skipped
    assert produced >= len(SERVER) - 3
