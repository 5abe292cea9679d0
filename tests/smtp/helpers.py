"""A scripted shell for driving :class:`ServerProtocol` in memory."""

from collections.abc import Callable

from app.smtp.codes import Reply
from app.smtp.events import (
    NEED_DATA,
    NO_REPLY,
    TERMINAL,
    Auth,
    AuthResponse,
    BdatEnd,
    ConnectionClosed,
    DataChunk,
    DataEnd,
    DataStart,
    Ehlo,
    Event,
    Helo,
    StartTLS,
)
from app.smtp.protocol import Limits, ServerProtocol

OK = Reply(250, "0.0", "ok")
GO = Reply(354, "", "go ahead")


def default_reply(p: ServerProtocol, ev: Event) -> Reply:
    """What a cooperative shell answers: the core's reply when it chose one."""
    reply = getattr(ev, "reply", None)
    if isinstance(reply, Reply):
        return reply
    if isinstance(ev, Ehlo):
        return p.ehlo_reply("mx.example")
    if isinstance(ev, Helo):
        return Reply(250, "", "mx.example")
    if isinstance(ev, DataStart):
        return GO
    if isinstance(ev, (DataEnd, BdatEnd)) and ev.error is not None:
        return ev.error
    if isinstance(ev, StartTLS):
        return Reply(220, "0.0", "go")
    if isinstance(ev, (Auth, AuthResponse)):
        return Reply(235, "7.0", "nice")
    return OK


def only(kind: type[Event], reply: Reply) -> Callable[[ServerProtocol, Event], Reply]:
    """Answer events of ``kind`` with ``reply``, everything else as default."""

    def answer(p: ServerProtocol, ev: Event) -> Reply:
        return reply if isinstance(ev, kind) else default_reply(p, ev)

    return answer


class Shell:
    """Feeds input, answers events and records events and output."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        reply: Callable[[ServerProtocol, Event], Reply] = default_reply,
        **kw: object,
    ) -> None:
        kw.setdefault("submission", False)
        kw.setdefault("tls_active", False)
        self.p = ServerProtocol(limits or Limits(), **kw)  # type: ignore[arg-type]
        self.reply = reply
        self.events: list[Event] = []
        self.out = b""
        self.closed = False

    def feed(self, data: bytes) -> list[Event]:
        self.p.receive_data(data)
        return self.drain()

    def drain(self) -> list[Event]:
        new: list[Event] = []
        while not self.closed:
            ev = self.p.next_event()
            if ev is NEED_DATA:
                break
            assert isinstance(ev, Event)
            new.append(ev)
            if isinstance(ev, ConnectionClosed):
                self.closed = True
                break
            if not isinstance(ev, NO_REPLY):
                self.out += self.p.send(self.reply(self.p, ev))
            if isinstance(ev, TERMINAL):
                self.closed = True
        self.events += new
        return new

    def lines(self) -> list[str]:
        return self.out.decode().split("\r\n")[:-1]

    def last_reply(self) -> str:
        return self.lines()[-1]

    def data(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, DataChunk))


def session(**kw: object) -> Shell:
    """A shell that already did EHLO."""
    s = Shell(**kw)  # type: ignore[arg-type]
    s.feed(b"EHLO client.example\r\n")
    s.out = b""
    s.events = []
    return s


def transaction(**kw: object) -> Shell:
    """A shell inside a transaction with one accepted recipient."""
    s = session(**kw)
    s.feed(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n")
    s.out = b""
    s.events = []
    return s
