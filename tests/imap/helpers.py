"""Small drivers for the sans-I/O parser used by the IMAP tests."""

from app.imap.commands import Command
from app.imap.parser import NEED_DATA, CommandParser, Event


def drain(p: CommandParser) -> list[Event]:
    out: list[Event] = []
    while True:
        ev = p.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)


def events(data: bytes, **kw: object) -> list[Event]:
    """All events for ``data`` fed at once."""
    p = CommandParser(**kw)  # type: ignore[arg-type]
    p.receive_data(data)
    return drain(p)


def events_split(chunks: list[bytes], **kw: object) -> list[Event]:
    p = CommandParser(**kw)  # type: ignore[arg-type]
    out: list[Event] = []
    for ch in chunks:
        p.receive_data(ch)
        out.extend(drain(p))
    return out


def merge_append_data(evs: list[Event]) -> list[object]:
    """Join consecutive AppendData chunks so differently split inputs compare equal."""
    from app.imap.parser import AppendData

    out: list[object] = []
    for ev in evs:
        if isinstance(ev, AppendData) and out and isinstance(out[-1], bytes):
            out[-1] = out[-1] + ev.data
        elif isinstance(ev, AppendData):
            out.append(ev.data)
        else:
            out.append(ev)
    return out


def command(line: bytes, **kw: object) -> Command:
    """Parse a complete single command (literals included) and return it."""
    evs = [e for e in events(line, **kw) if isinstance(e, Command)]
    assert len(evs) == 1, events(line, **kw)
    return evs[0]
