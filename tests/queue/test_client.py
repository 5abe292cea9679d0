"""The sans-I/O SMTP client core, wired in memory to the server core."""

import base64
import hashlib
import hmac

import pytest

from app.auth.base import ChannelBinding
from app.auth.scram import SHA256, ScramServer, derive_keys
from app.smtp.client import (
    NEED_DATA,
    ClientProtocol,
    Cmd,
    DataEncoder,
    LocalProtocolError,
    RemoteProtocolError,
    ReplyEvent,
    SASLClient,
    choose_mechanism,
    parse_ehlo,
    parse_reply_lines,
)
from app.smtp.codes import Reply
from app.smtp.events import DataChunk, Mail, Rcpt
from app.smtp.protocol import Limits
from tests.smtp.helpers import Shell


class Pair:
    """A client protocol talking to a server Shell in memory."""

    def __init__(self, **kw: object) -> None:
        self.server = Shell(**kw)  # type: ignore[arg-type]
        self.client = ClientProtocol()
        self.client.receive_data(self.server.p.greeting("mx.example"))

    def send(self, data: bytes) -> list[ReplyEvent]:
        self.server.out = b""
        if data:
            self.server.feed(data)
            self.client.receive_data(self.server.out)
        out: list[ReplyEvent] = []
        while True:
            ev = self.client.next_event()
            if ev is NEED_DATA:
                return out
            assert isinstance(ev, ReplyEvent)
            out.append(ev)


def test_greeting_and_ehlo_extensions_are_parsed() -> None:
    p = Pair(limits=Limits(max_recipients=7, max_message_size=12345))
    (greet,) = p.send(b"")
    assert greet.command is Cmd.GREETING and greet.reply.code == 220
    (ev,) = p.send(p.client.ehlo("client.example"))
    assert ev.command is Cmd.EHLO and ev.reply.code == 250
    ext = p.client.extensions
    assert ext.hostname == "mx.example"
    assert ext.pipelining and ext.starttls and ext.chunking and ext.smtputf8
    assert ext.eightbitmime and ext.enhanced and ext.size == 12345 and ext.size_param
    assert ext.rcptmax == 7
    assert not ext.requiretls  # only after TLS


def test_pipelined_transaction_gets_replies_in_order() -> None:
    p = Pair()
    p.send(b"")
    p.send(p.client.ehlo("c.example"))
    batch = (
        p.client.mail("a@x.example", size=10, eight_bit=True, smtputf8=True)
        + p.client.rcpt("b@y.example")
        + p.client.rcpt("c@y.example")
        + p.client.data()
    )
    evs = p.send(batch)
    assert [e.command for e in evs] == [Cmd.MAIL, Cmd.RCPT, Cmd.RCPT, Cmd.DATA]
    assert [e.arg for e in evs[1:3]] == ["b@y.example", "c@y.example"]
    assert evs[3].reply.code == 354
    mail = next(e for e in p.server.events if isinstance(e, Mail))
    assert mail.params == {"SIZE": "10", "BODY": "8BITMIME", "SMTPUTF8": None}
    assert [e.path for e in p.server.events if isinstance(e, Rcpt)] == [
        "b@y.example",
        "c@y.example",
    ]
    enc = DataEncoder(dot_stuff=True)
    body = enc.encode(b"Subject: t\n\n.hidden\r\n..two\rend") + enc.end()
    p.client.data_end()
    (done,) = p.send(body)
    assert done.command is Cmd.DATA_END and done.reply.code == 250
    assert p.server.data() == b"Subject: t\r\n\r\n.hidden\r\n..two\r\nend\r\n"


def test_bdat_chunks_arrive_normalised_without_dot_stuffing() -> None:
    p = Pair()
    p.send(b"")
    p.send(p.client.ehlo("c.example"))
    p.send(p.client.mail("a@x.example") + p.client.rcpt("b@y.example"))
    enc = DataEncoder(dot_stuff=False)
    part1 = enc.encode(b"Subject: t\r")
    part2 = enc.encode(b"\n\n.x\n") + enc.end()
    evs = p.send(p.client.bdat(len(part1), False) + part1 + p.client.bdat(len(part2), True) + part2)
    assert [e.command for e in evs] == [Cmd.BDAT, Cmd.BDAT]
    assert all(e.reply.code == 250 for e in evs)
    assert b"".join(e.data for e in p.server.events if isinstance(e, DataChunk)) == (
        b"Subject: t\r\n\r\n.x\r\n"
    )


@pytest.mark.parametrize(
    ("chunks", "wire"),
    [
        ([b"a\nb"], b"a\r\nb\r\n.\r\n"),
        ([b"a\r", b"\nb\r\n"], b"a\r\nb\r\n.\r\n"),
        ([b"a\r", b"b"], b"a\r\nb\r\n.\r\n"),
        ([b"x\r"], b"x\r\n.\r\n"),
        ([b".", b"a\r\n", b".b\n.\n"], b"..a\r\n..b\r\n..\r\n.\r\n"),
        ([b"a\r\n", b".", b"\r\n"], b"a\r\n..\r\n.\r\n"),
        ([b""], b".\r\n"),
        ([b"\n\r\r\n"], b"\r\n\r\n\r\n.\r\n"),
    ],
)
def test_data_encoder_never_emits_bare_cr_or_lf(chunks: list[bytes], wire: bytes) -> None:
    enc = DataEncoder(dot_stuff=True)
    out = b"".join(enc.encode(ch) for ch in chunks) + enc.end()
    assert out == wire
    assert b"\r" not in out.replace(b"\r\n", b"") and b"\n" not in out.replace(b"\r\n", b"")


def test_multiline_reply_and_enhanced_code() -> None:
    r = parse_reply_lines([b"550-5.1.1 no such user", b"550 5.1.1 really not"])
    assert r == Reply(550, "1.1", "no such user\nreally not")
    # an enhanced code of the wrong class is text
    assert parse_reply_lines([b"250 4.0.0 odd"]) == Reply(250, "", "4.0.0 odd")
    assert parse_reply_lines([b"250"]) == Reply(250, "", "")


@pytest.mark.parametrize(
    "data",
    [b"hello\r\n", b"25 short\r\n", b"999 bad\r\n", b"250-a\r\n251 b\r\n", b"250xno\r\n"],
)
def test_malformed_replies_are_remote_errors(data: bytes) -> None:
    c = ClientProtocol()
    c.receive_data(data)
    with pytest.raises(RemoteProtocolError):
        c.next_event()


def test_overlong_reply_line_and_unexpected_reply_and_eof() -> None:
    c = ClientProtocol(max_line=100)
    c.receive_data(b"220 " + b"x" * 200)
    with pytest.raises(RemoteProtocolError):
        c.next_event()
    c = ClientProtocol()
    c.receive_data(b"220 hi\r\n250 surprise\r\n")
    assert isinstance(c.next_event(), ReplyEvent)
    with pytest.raises(RemoteProtocolError):
        c.next_event()
    c = ClientProtocol()
    c.receive_data(b"220 hi\r\n")
    c.next_event()
    c.ehlo("x")
    c.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        c.next_event()


def test_data_buffered_before_tls_is_discarded() -> None:
    c = ClientProtocol()
    c.receive_data(b"220 hi\r\n")
    c.next_event()
    c.starttls()
    c.receive_data(b"220 go\r\n250 injected\r\n")
    ev = c.next_event()
    assert isinstance(ev, ReplyEvent) and ev.command is Cmd.STARTTLS
    with pytest.raises(LocalProtocolError):
        c.ehlo("x")  # not before the handshake
    c.start_tls_done()
    assert c.next_event() is NEED_DATA  # the injected reply is gone


def test_mail_parameters_only_when_announced() -> None:
    c = ClientProtocol()
    assert c.mail("a@b", size=5, eight_bit=True, smtputf8=True, requiretls=True) == (
        b"MAIL FROM:<a@b>\r\n"
    )
    c.extensions = parse_ehlo(Reply(250, "", "mx\nSIZE\nREQUIRETLS\n8BITMIME"))
    assert c.mail("", size=5, requiretls=True, eight_bit=True) == (
        b"MAIL FROM:<> SIZE=5 BODY=8BITMIME REQUIRETLS\r\n"
    )
    with pytest.raises(LocalProtocolError):
        c.rcpt("x@y>\r\nRSET")


def test_ehlo_parsing_of_auth_and_limits() -> None:
    ext = parse_ehlo(
        Reply(250, "", "mx\nAUTH PLAIN scram-sha-256\nAUTH=LOGIN\nLIMITS MAILMAX=3 RCPTMAX=x")
    )
    assert ext.auth == ("PLAIN", "SCRAM-SHA-256", "LOGIN")
    assert ext.rcptmax == 0 and ext.mailmax == 3


def test_mechanism_choice() -> None:
    offered = ["PLAIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"]
    assert choose_mechanism(offered, channel_binding=True, plain_allowed=False) == (
        "SCRAM-SHA-256-PLUS"
    )
    assert choose_mechanism(offered, channel_binding=False, plain_allowed=False) == "SCRAM-SHA-256"
    assert choose_mechanism(["PLAIN"], channel_binding=True, plain_allowed=False) is None
    assert choose_mechanism(["PLAIN"], channel_binding=True, plain_allowed=True) == "PLAIN"
    assert choose_mechanism(["CRAM-MD5", "PLAIN"], channel_binding=False, plain_allowed=True) == (
        "CRAM-MD5"
    )


def test_scram_plus_exchange_against_the_server_core() -> None:
    cb = ChannelBinding("tls-exporter", b"\x01" * 32)
    keys = derive_keys(SHA256, "pw", b"salt1234", 4096)
    server = ScramServer(SHA256, channel_binding=cb, plus=True)
    client = SASLClient("SCRAM-SHA-256-PLUS", "user", "pw", channel_binding=cb)
    first = client.initial()
    assert first is not None
    server.client_first(first)
    final = client.step(server.server_first(keys))
    server_final = server.client_final(final)
    assert client.step(server_final) == b""
    assert client.verified


def test_cram_md5_and_plain() -> None:
    s = SASLClient("CRAM-MD5", "joe", "pw")
    assert s.initial() is None
    digest = hmac.new(b"pw", b"<1.2@x>", hashlib.md5).hexdigest()
    assert s.step(b"<1.2@x>") == f"joe {digest}".encode()
    assert SASLClient("PLAIN", "joe", "pw").initial() == b"\0joe\0pw"
    c = ClientProtocol()
    assert (
        c.auth("PLAIN", b"\0joe\0pw") == b"AUTH PLAIN " + base64.b64encode(b"\0joe\0pw") + b"\r\n"
    )
    assert c.auth("X", b"") == b"AUTH X =\r\n"
