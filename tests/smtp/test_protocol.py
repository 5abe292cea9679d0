"""Commands, sequence rules, parameters, limits and pipelining of ServerProtocol."""

import base64

import pytest

from app.smtp.codes import Reply
from app.smtp.events import (
    NEED_DATA,
    Auth,
    AuthBadResponse,
    AuthCancelled,
    AuthResponse,
    BadCommand,
    ConnectionClosed,
    DataStart,
    Ehlo,
    Event,
    Expn,
    FirstCommandNotSMTP,
    Helo,
    Help,
    InputOverflow,
    LineTooLong,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Refused,
    Rset,
    StartTLS,
    TooManyBadCommands,
    Vrfy,
)
from app.smtp.protocol import Limits, LocalProtocolError, ServerProtocol, ehlo_reply

from .helpers import OK, Shell, default_reply, only, session, transaction

# --- greeting and EHLO -----------------------------------------------------------


def test_greeting_is_220_with_hostname_and_esmtp() -> None:
    p = ServerProtocol(Limits(), submission=False, tls_active=False)
    assert p.greeting("mx.example") == b"220 mx.example ESMTP Pillarbox\r\n"


def test_ehlo_reply_lists_extensions_before_tls() -> None:
    s = Shell()
    s.feed(b"EHLO client.example\r\n")
    assert s.events == [Ehlo("client.example")]
    assert s.lines() == [
        "250-mx.example",
        "250-PIPELINING",
        "250-SIZE 104857600",
        "250-STARTTLS",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250-CHUNKING",
        "250-LIMITS RCPTMAX=1000",
        "250 SMTPUTF8",
    ]


def test_ehlo_reply_after_tls_has_requiretls_and_no_starttls() -> None:
    r = ehlo_reply(
        "mx.example", max_size=10, tls_active=True, auth_mechanisms=("PLAIN",), requiretls=True
    )
    lines = r.text.split("\n")
    assert "STARTTLS" not in lines
    assert "REQUIRETLS" in lines and "AUTH PLAIN" in lines and "SIZE 10" in lines


def test_ehlo_reply_optional_extensions_can_be_left_out() -> None:
    r = ehlo_reply(
        "h",
        max_size=1,
        tls_active=False,
        auth_mechanisms=(),
        requiretls=True,
        chunking=False,
        smtputf8=False,
        limits_rcptmax=50,
    )
    lines = r.text.split("\n")
    assert "REQUIRETLS" not in lines and "CHUNKING" not in lines and "SMTPUTF8" not in lines
    assert "LIMITS RCPTMAX=50" in lines and not any(x.startswith("AUTH") for x in lines)
    assert "BINARYMIME" not in lines


def test_auth_is_announced_on_submission_only_when_allowed() -> None:
    def ehlo_lines(**kw: object) -> list[str]:
        p = ServerProtocol(Limits(), auth_mechanisms=("PLAIN", "LOGIN"), **kw)  # type: ignore[arg-type]
        return p.ehlo_reply("h").text.split("\n")

    assert "AUTH PLAIN LOGIN" in ehlo_lines(submission=True, tls_active=True)
    assert "AUTH PLAIN LOGIN" not in ehlo_lines(submission=True, tls_active=False)
    assert "AUTH PLAIN LOGIN" in ehlo_lines(
        submission=True, tls_active=False, auth_requires_tls=False
    )
    assert "AUTH PLAIN LOGIN" not in ehlo_lines(submission=False, tls_active=True)


@pytest.mark.parametrize(
    "line,domain",
    [
        (b"EHLO mail.example.org", "mail.example.org"),
        (b"ehlo MAIL.example.org", "MAIL.example.org"),
        (b"EHLO [192.0.2.1]", "[192.0.2.1]"),
        (b"EHLO [IPv6:2001:db8::1]", "[IPv6:2001:db8::1]"),
        (b"EHLO [192.0.2.1] some text", "[192.0.2.1]"),
        (b"EHLO localhost  ", "localhost"),
        ("EHLO bücher.example".encode(), "bücher.example"),
    ],
)
def test_ehlo_accepts_domains_and_address_literals(line: bytes, domain: str) -> None:
    s = Shell()
    s.feed(line + b"\r\n")
    assert s.events == [Ehlo(domain)]
    assert s.p.hello == domain and s.p.ehlo


@pytest.mark.parametrize(
    "line",
    [
        b"EHLO",
        b"EHLO ",
        b"EHLO -bad-.example",
        b"EHLO exa mple",
        b"EHLO [300.1.1.1]",
        b"EHLO [IPv6:192.0.2.1]",
        b"EHLO [foo:bar]",
        b"EHLO [192.0.2.1",
        b"EHLO a@b",
        b"HELO [192.0.2.1]",
    ],
)
def test_bad_hello_argument_is_501(line: bytes) -> None:
    s = Shell()
    s.feed(line + b"\r\n")
    assert isinstance(s.events[0], BadCommand)
    assert s.last_reply().startswith("501 5.5.2 ")
    assert s.p.hello is None


def test_helo_sets_hello_without_ehlo() -> None:
    s = Shell()
    s.feed(b"HELO client.example\r\nMAIL FROM:<>\r\n")
    assert s.events == [Helo("client.example"), Mail("", {})]
    assert not s.p.ehlo and s.p.in_transaction


def test_submission_accepts_any_ehlo_argument() -> None:
    s = Shell(submission=True, tls_active=True)
    s.feed(b"EHLO [my laptop]\r\nEHLO\r\n")
    assert s.events == [Ehlo("[my laptop]"), Ehlo("")]
    assert s.p.hello == ""


def test_refused_ehlo_leaves_no_hello() -> None:
    s = Shell(reply=only(Ehlo, Reply(550, "5.0", "nope")))
    s.feed(b"EHLO client.example\r\nMAIL FROM:<>\r\n")
    assert s.last_reply() == "503 5.5.1 no ehlo/helo yet"


# --- sequence rules --------------------------------------------------------------


def test_mail_before_ehlo_is_503() -> None:
    s = Shell()
    s.feed(b"NOOP\r\nMAIL FROM:<a@example.org>\r\n")
    assert s.last_reply() == "503 5.5.1 no ehlo/helo yet"


def test_rcpt_before_mail_is_503() -> None:
    s = session()
    s.feed(b"RCPT TO:<b@example.com>\r\n")
    assert isinstance(s.events[0], BadCommand)
    assert s.last_reply() == "503 5.5.1 missing MAIL FROM"


def test_data_without_rcpt_is_503() -> None:
    s = session()
    s.feed(b"MAIL FROM:<a@example.org>\r\nDATA\r\n")
    assert s.last_reply() == "503 5.5.1 missing RCPT TO"


def test_data_without_mail_is_503() -> None:
    s = session()
    s.feed(b"DATA\r\n")
    assert s.last_reply() == "503 5.5.1 missing MAIL FROM"


def test_data_after_all_recipients_rejected_is_554_no_valid_recipients() -> None:
    def reply(p: ServerProtocol, ev: Event) -> Reply:
        if isinstance(ev, Rcpt):
            return Reply(550, "1.1", "no such user")
        return default_reply(p, ev)

    s = session(reply=reply)
    s.feed(b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@y.org>\r\nDATA\r\n")
    assert isinstance(s.events[-1], Refused)
    assert s.last_reply() == "554 5.5.1 no valid recipients"
    assert s.p.accepted_recipients == 0


def test_one_accepted_recipient_is_enough_for_data() -> None:
    seen: list[str] = []

    def reply(p: ServerProtocol, ev: Event) -> Reply:
        if isinstance(ev, Rcpt):
            seen.append(ev.path)
            return OK if ev.path == "ok@y.org" else Reply(550, "1.1", "no")
        return default_reply(p, ev)

    s = session(reply=reply)
    s.feed(b"MAIL FROM:<a@x.org>\r\nRCPT TO:<bad@y.org>\r\nRCPT TO:<ok@y.org>\r\nDATA\r\n")
    assert isinstance(s.events[-1], DataStart)
    assert s.p.accepted_recipients == 1


def test_explicit_rcpt_decisions_override_reply_inference() -> None:
    p = ServerProtocol(Limits(), submission=False, tls_active=False)
    p.receive_data(b"EHLO c.example\r\n")
    p.send(p.ehlo_reply("h")) if isinstance(p.next_event(), Ehlo) else None
    p.receive_data(b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@y.org>\r\n")
    assert isinstance(p.next_event(), Mail)
    p.send(OK)
    assert isinstance(p.next_event(), Rcpt)
    p.rcpt_rejected()
    p.send(OK)  # a shell may say 250 and fail later; the explicit decision counts
    assert isinstance(p.next_event(), Rcpt)
    p.rcpt_accepted()
    p.send(OK)
    assert p.accepted_recipients == 1
    with pytest.raises(LocalProtocolError):
        p.rcpt_accepted()


def test_second_mail_in_transaction_is_503() -> None:
    s = transaction()
    s.feed(b"MAIL FROM:<a@example.org>\r\n")
    assert s.last_reply() == "503 5.5.1 already have MAIL"


def test_refused_mail_starts_no_transaction() -> None:
    s = session(reply=only(Mail, Reply(550, "7.1", "no")))
    s.feed(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n")
    assert not s.p.in_transaction
    assert s.last_reply() == "503 5.5.1 missing MAIL FROM"


def test_rset_drops_the_transaction() -> None:
    s = transaction()
    s.feed(b"RSET\r\nRCPT TO:<b@example.com>\r\n")
    assert isinstance(s.events[0], Rset)
    assert s.last_reply() == "503 5.5.1 missing MAIL FROM"


def test_ehlo_again_resets_the_transaction() -> None:
    s = transaction()
    s.feed(b"EHLO client.example\r\nMAIL FROM:<c@example.org>\r\n")
    assert isinstance(s.events[-1], Mail)
    assert s.lines()[-1] == "250 2.0.0 ok"


def test_submission_mail_requires_auth_530() -> None:
    s = Shell(submission=True, tls_active=True, auth_mechanisms=("PLAIN",))
    s.feed(b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n")
    assert [type(e) for e in s.events[1:]] == [Refused, Refused, Refused]
    assert s.lines()[-3:] == ["530 5.7.0 authentication required"] * 3


def test_commands_are_case_insensitive() -> None:
    s = session()
    s.feed(b"mAiL fRoM:<a@example.org>\r\nrcpt to:<b@example.com>\r\nData\r\n")
    assert [type(e) for e in s.events] == [Mail, Rcpt, DataStart]


def test_space_after_colon_is_tolerated() -> None:
    s = session()
    s.feed(b"MAIL FROM: <a@example.org>\r\nRCPT TO: <b@example.com>\r\n")
    assert s.events == [Mail("a@example.org", {}), Rcpt("b@example.com", {})]


@pytest.mark.parametrize(
    "line",
    [
        b"MAIL FROM:a@example.org",
        b"MAIL FROM:<a@example.org",
        b"MAIL FROM:<a@example.org>SIZE=1",
        b"MAIL TO:<a@example.org>",
        b"MAIL FROM",
        b"MAIL",
        b"MAIL  FROM:<a@example.org>",
        b"MAIL FROM:  <a@example.org>",
        b"MAIL FROM:<a\x01@example.org>",
    ],
)
def test_malformed_mail_is_501(line: bytes) -> None:
    s = session()
    s.feed(line + b"\r\n")
    assert isinstance(s.events[0], BadCommand)
    assert s.last_reply().startswith("501 5.5.2 ")
    assert not s.p.in_transaction


def test_path_is_raw_text_between_brackets_with_quoted_gt() -> None:
    s = session()
    s.feed(
        b'MAIL FROM:<"a>b"@example.org> BODY=8BITMIME\r\nRCPT TO:<@relay.example:c@d.example>\r\n'
    )
    assert s.events == [
        Mail('"a>b"@example.org', {"BODY": "8BITMIME"}),
        Rcpt("@relay.example:c@d.example", {}),
    ]


def test_null_reverse_path_and_postmaster() -> None:
    s = session()
    s.feed(b"MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n")
    assert s.events == [Mail("", {}), Rcpt("Postmaster", {})]


def test_utf8_path_is_passed_through() -> None:
    s = session()
    s.feed("MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".encode())
    assert s.events == [Mail("jörg@bücher.example", {"SMTPUTF8": None})]


# --- MAIL/RCPT parameters ----------------------------------------------------------


@pytest.mark.parametrize(
    "params,expected",
    [
        (b"SIZE=1000", {"SIZE": "1000"}),
        (b"size=0 body=7bit", {"SIZE": "0", "BODY": "7bit"}),
        (b"BODY=8BITMIME SMTPUTF8", {"BODY": "8BITMIME", "SMTPUTF8": None}),
        (b"AUTH=<>", {"AUTH": "<>"}),
        (b"AUTH=e+3Dmc2@example.com", {"AUTH": "e+3Dmc2@example.com"}),
        (b"SIZE=5  BODY=7BIT  ", {"SIZE": "5", "BODY": "7BIT"}),
    ],
)
def test_valid_mail_parameters(params: bytes, expected: dict[str, str | None]) -> None:
    s = session()
    s.feed(b"MAIL FROM:<a@example.org> " + params + b"\r\n")
    assert s.events == [Mail("a@example.org", expected)]


def test_mail_event_helpers() -> None:
    m = Mail("a@b", {"SIZE": "12", "BODY": "8bitmime", "SMTPUTF8": None})
    assert (m.size, m.body, m.smtputf8, m.requiretls) == (12, "8BITMIME", True, False)


@pytest.mark.parametrize(
    "params,reply",
    [
        (b"SIZE=abc", "501 5.5.4 "),
        (b"SIZE=", "501 5.5.4 "),
        (b"SIZE", "501 5.5.4 "),
        (b"SIZE=123456789012345678901", "501 5.5.4 "),
        (b"SIZE=104857601", "552 5.3.4 message too large"),
        (b"BODY=BINARYMIME", "555 5.5.4 "),
        (b"BODY=9BIT", "555 5.5.4 "),
        (b"SMTPUTF8=yes", "501 5.5.4 "),
        (b"AUTH=bad+zz", "501 5.5.4 "),
        (b"AUTH", "501 5.5.4 "),
        (b"XFOO=bar", "555 5.5.4 unrecognized parameter 'XFOO'"),
        (b"HOLDFOR=10", "555 5.5.4 "),
        (b"RET=FULL", "555 5.5.4 "),  # no DSN announced
        (b"SIZE=1 SIZE=2", "501 5.5.4 duplicate parameter 'SIZE'"),
        (b"-X=1", "501 5.5.4 "),
        (b"X=a=b", "501 5.5.4 "),
        ("ENVID=é".encode(), "501 5.5.4 "),
        (b"REQUIRETLS", "530 5.7.10 requiretls only allowed on tls-encrypted connections"),
    ],
)
def test_bad_mail_parameters(params: bytes, reply: str) -> None:
    s = session()
    s.feed(b"MAIL FROM:<a@example.org> " + params + b"\r\n")
    assert isinstance(s.events[0], (BadCommand, Refused))
    assert s.last_reply().startswith(reply)
    assert not s.p.in_transaction


def test_size_over_limit_is_refused_not_counted_bad() -> None:
    s = session(limits=Limits(max_message_size=1000))
    s.feed(b"MAIL FROM:<a@example.org> SIZE=1001\r\nMAIL FROM:<a@example.org> SIZE=1000\r\n")
    assert isinstance(s.events[0], Refused) and isinstance(s.events[1], Mail)


def test_requiretls_accepted_over_tls() -> None:
    s = session(tls_active=True)
    s.feed(b"MAIL FROM:<a@example.org> REQUIRETLS\r\n")
    assert s.events == [Mail("a@example.org", {"REQUIRETLS": None})]
    assert s.events[0].requiretls  # type: ignore[attr-defined]


def test_requiretls_unknown_when_disabled() -> None:
    s = session(tls_active=True, requiretls=False)
    s.feed(b"MAIL FROM:<a@example.org> REQUIRETLS\r\n")
    assert s.last_reply().startswith("555 5.5.4 ")


def test_smtputf8_unknown_when_disabled() -> None:
    s = session(smtputf8=False)
    s.feed(b"MAIL FROM:<a@example.org> SMTPUTF8\r\n")
    assert s.last_reply().startswith("555 5.5.4 ")


def test_utf8_parameter_value_needs_smtputf8() -> None:
    s = session()
    s.feed("MAIL FROM:<a@example.org> AUTH=jörg\r\n".encode())
    assert s.last_reply().startswith("501 5.5.4 ")


def test_dsn_parameters_when_dsn_enabled() -> None:
    s = session(dsn=True)
    s.feed(
        b"MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ314159\r\n"
        b"RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com\r\n"
        b"RCPT TO:<c@example.com> NOTIFY=NEVER\r\n"
    )
    assert s.events == [
        Mail("a@example.org", {"RET": "HDRS", "ENVID": "QQ314159"}),
        Rcpt("b@example.com", {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": "rfc822;b@example.com"}),
        Rcpt("c@example.com", {"NOTIFY": "NEVER"}),
    ]
    assert "DSN" in s.p.ehlo_reply("h").text.split("\n")


@pytest.mark.parametrize(
    "params",
    [
        b"NOTIFY=NEVER,SUCCESS",
        b"NOTIFY=SOMETIMES",
        b"NOTIFY=DELAY,DELAY",
        b"ORCPT=rfc822",
        b"ORCPT=;x",
    ],
)
def test_bad_dsn_rcpt_parameters_are_501(params: bytes) -> None:
    s = transaction(dsn=True)
    s.feed(b"RCPT TO:<c@example.com> " + params + b"\r\n")
    assert s.last_reply().startswith("501 5.5.4 ")


@pytest.mark.parametrize("params", [b"NOTIFY=NEVER", b"ORCPT=rfc822;x@y", b"FOO"])
def test_rcpt_parameters_without_dsn_are_555(params: bytes) -> None:
    s = transaction()
    s.feed(b"RCPT TO:<c@example.com> " + params + b"\r\n")
    assert s.last_reply().startswith("555 5.5.4 ")


def test_too_many_recipients_is_452() -> None:
    s = session(limits=Limits(max_recipients=2))
    s.feed(b"MAIL FROM:<a@x.org>\r\n" + b"RCPT TO:<b@y.org>\r\n" * 3 + b"DATA\r\n")
    assert [type(e) for e in s.events] == [Mail, Rcpt, Rcpt, Refused, DataStart]
    assert s.lines()[3] == "452 4.5.3 max of 2 recipients reached"


def test_rejected_recipients_do_not_count_toward_the_limit() -> None:
    def reply(p: ServerProtocol, ev: Event) -> Reply:
        if isinstance(ev, Rcpt) and ev.path.startswith("bad"):
            return Reply(550, "1.1", "no")
        return default_reply(p, ev)

    s = session(limits=Limits(max_recipients=1), reply=reply)
    s.feed(b"MAIL FROM:<a@x.org>\r\nRCPT TO:<bad@y.org>\r\nRCPT TO:<ok@y.org>\r\n")
    assert [type(e) for e in s.events] == [Mail, Rcpt, Rcpt]


# --- other commands ------------------------------------------------------------------


def test_vrfy_expn_help_noop_need_no_ehlo() -> None:
    s = Shell()
    s.feed(b"NOOP\r\nVRFY postmaster\r\nEXPN list@example.org\r\nHELP\r\nHELP mail\r\nNOOP x y\r\n")
    assert s.events == [
        Noop(),
        Vrfy("postmaster"),
        Expn("list@example.org"),
        Help(None),
        Help("mail"),
        Noop(),
    ]


@pytest.mark.parametrize("line", [b"VRFY", b"EXPN ", b"RSET x", b"QUIT now", b"DATA x"])
def test_argument_errors_are_501(line: bytes) -> None:
    s = transaction()
    s.feed(line + b"\r\n")
    assert s.last_reply().startswith("501 5.5.2 ")


def test_quit_closes_after_reply() -> None:
    s = session(reply=only(Quit, Reply(221, "0.0", "bye")))
    s.feed(b"QUIT\r\nNOOP\r\n")
    assert s.events == [Quit()]
    assert s.last_reply() == "221 2.0.0 bye"
    assert s.p.next_event() == ConnectionClosed()


def test_unknown_command_after_a_known_one_is_500() -> None:
    s = Shell()
    s.feed(b"NOOP\r\nFOO bar\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [Noop, BadCommand, Noop]
    assert s.lines()[1] == "500 5.5.1 unknown command"


def test_bdat_is_unknown_when_chunking_is_off() -> None:
    s = transaction(chunking=False)
    s.feed(b"BDAT 3 LAST\r\n")
    assert s.last_reply() == "500 5.5.1 unknown command"


# --- first command not SMTP --------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: mx.example\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS ClientHello, no line end
        b"\x80\x2e\x01\x00\x02",  # SSLv2 hello
        b"\r\n",
        b"   EHLO x\r\n",
        b"\xff\xfe\xfd\r\n",
        b"X" * 5000,
    ],
)
def test_first_command_not_smtp_closes(data: bytes) -> None:
    s = Shell()
    s.feed(data)
    assert s.events == [FirstCommandNotSMTP(s.events[0].reply)]  # type: ignore[attr-defined]
    assert s.lines() == ["500 5.5.2 please try again speaking smtp"]
    assert s.closed
    assert s.p.next_event() == ConnectionClosed()


def test_unknown_command_later_does_not_close() -> None:
    s = session()
    s.feed(b"GET / HTTP/1.1\r\n")
    assert isinstance(s.events[0], BadCommand) and not s.closed


def test_first_command_with_syntax_error_is_not_closed() -> None:
    s = Shell()
    s.feed(b"EHLO\r\nEHLO c.example\r\n")
    assert [type(e) for e in s.events] == [BadCommand, Ehlo]


# --- limits ---------------------------------------------------------------------------


def test_line_too_long_is_500_and_the_session_continues() -> None:
    s = session()
    s.feed(b"NOOP " + b"x" * 3000)
    assert s.events == []
    assert s.p.pending_input == 0  # consumed while discarding
    s.feed(b"y" * 3000 + b"\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [LineTooLong, Noop]
    assert s.lines() == ["500 5.5.2 line too long, max is 2048 octets", "250 2.0.0 ok"]


def test_line_at_the_limit_is_accepted() -> None:
    s = session(limits=Limits(max_line_length=512))
    line = b"NOOP " + b"x" * (512 - 7) + b"\r\n"
    assert len(line) == 512
    s.feed(line + b"NOOP " + b"x" * (512 - 6) + b"\r\n")
    assert [type(e) for e in s.events] == [Noop, LineTooLong]


def test_auth_lines_may_be_longer() -> None:
    s = session(submission=True, tls_active=True, auth_mechanisms=("PLAIN",))
    blob = base64.b64encode(b"\0user\0" + b"p" * 6000)
    s.feed(b"AUTH PLAIN " + blob + b"\r\n")
    assert s.events == [Auth("PLAIN", b"\0user\0" + b"p" * 6000)]


def test_too_many_bad_commands_closes_with_421() -> None:
    s = session(limits=Limits(max_bad_commands=3))
    s.feed(b"FOO\r\n" * 3 + b"BAR\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [BadCommand] * 3 + [TooManyBadCommands]
    assert s.last_reply() == "421 4.7.0 too many bad commands, closing"
    assert s.closed


def test_refusals_do_not_count_as_bad_commands() -> None:
    s = session(limits=Limits(max_bad_commands=1, max_message_size=10))
    s.feed(b"MAIL FROM:<a@b.example> SIZE=11\r\n" * 5 + b"NOOP\r\n")
    assert [type(e) for e in s.events] == [Refused] * 5 + [Noop]


def test_flood_of_pipelined_input_is_cut_off() -> None:
    limits = Limits(max_pending_input=64 * 1024)
    s = session(limits=limits)
    p = s.p
    p.receive_data(b"NOOP\r\n" * 20000)  # a shell that never drained
    ev = p.next_event()
    assert isinstance(ev, InputOverflow)
    assert p.send(ev.reply) == b"421 4.7.0 too much input without reading replies, closing\r\n"
    assert p.next_event() == ConnectionClosed()


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        Limits(max_line_length=100)
    with pytest.raises(ValueError):
        Limits(max_recipients=0)


# --- pipelining and the h11-style API ----------------------------------------------------


def test_pipelined_commands_get_batched_replies() -> None:
    s = Shell()
    s.p.receive_data(
        b"EHLO c.example\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@y.org>\r\nDATA\r\n"
    )
    s.drain()
    assert [type(e) for e in s.events] == [Ehlo, Mail, Rcpt, Rcpt, DataStart]
    assert s.out.endswith(b"250 2.0.0 ok\r\n250 2.0.0 ok\r\n250 2.0.0 ok\r\n354 go ahead\r\n")


def test_commands_split_across_reads() -> None:
    s = Shell()
    for b in b"EHLO c.example\r\nNOOP\r\n":
        s.feed(bytes([b]))
    assert s.events == [Ehlo("c.example"), Noop()]


def test_bare_lf_ends_a_command_line() -> None:
    s = Shell()
    s.feed(b"EHLO c.example\nNOOP\n")
    assert s.events == [Ehlo("c.example"), Noop()]


def test_next_event_before_reply_is_a_local_error() -> None:
    p = ServerProtocol(Limits(), submission=False, tls_active=False)
    p.receive_data(b"NOOP\r\nNOOP\r\n")
    assert p.next_event() == Noop()
    with pytest.raises(LocalProtocolError):
        p.next_event()
    p.send(OK)
    with pytest.raises(LocalProtocolError):
        p.send(OK)


def test_eof_gives_connection_closed() -> None:
    s = session()
    s.feed(b"NOOP\r\nNOO")
    s.feed(b"")
    assert s.events == [Noop(), ConnectionClosed()]


def test_invalid_utf8_command_is_500() -> None:
    s = session()
    s.feed(b"MAIL FROM:<\xff@x>\r\n")
    assert s.last_reply() == "500 5.5.2 invalid utf-8 in command"


# --- AUTH --------------------------------------------------------------------------------


def submission(**kw: object) -> Shell:
    kw.setdefault("tls_active", True)
    return session(submission=True, auth_mechanisms=("PLAIN", "LOGIN", "SCRAM-SHA-256"), **kw)


def test_auth_with_initial_response_then_mail() -> None:
    s = submission()
    s.feed(b"AUTH PLAIN " + base64.b64encode(b"\0u\0p") + b"\r\nMAIL FROM:<u@x.org>\r\n")
    assert s.events == [Auth("PLAIN", b"\0u\0p"), Mail("u@x.org", {})]
    assert s.p.authenticated


def test_auth_equals_is_empty_initial_response_and_two_spaces_ok() -> None:
    s = submission(reply=only(Auth, Reply(535, "7.8", "bad")))
    s.feed(b"AUTH PLAIN =\r\nAUTH plain  AGI=\r\n")
    assert s.events == [Auth("PLAIN", b""), Auth("PLAIN", b"\0b")]
    assert not s.p.authenticated


def test_auth_exchange_with_continuations() -> None:
    def reply(p: ServerProtocol, ev: Event) -> Reply:
        if isinstance(ev, Auth):
            return Reply(334, "", "VXNlcm5hbWU6")
        if isinstance(ev, AuthResponse):
            return Reply(334, "", "UGFzc3dvcmQ6") if ev.data == b"user" else Reply(235, "7.0", "ok")
        return default_reply(p, ev)

    s = submission(reply=reply)
    s.feed(b"AUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\nMAIL FROM:<u@x.org>\r\n")
    assert s.events == [
        Auth("LOGIN", None),
        AuthResponse(b"user"),
        AuthResponse(b"pass"),
        Mail("u@x.org", {}),
    ]
    assert s.lines()[:3] == ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 ok"]


def test_auth_star_cancels_the_exchange() -> None:
    def reply(p: ServerProtocol, ev: Event) -> Reply:
        return Reply(334, "", "") if isinstance(ev, Auth) else default_reply(p, ev)

    s = submission(reply=reply)
    s.feed(b"AUTH LOGIN\r\n*\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [Auth, AuthCancelled, Noop]
    assert s.lines()[1] == "501 5.5.0 authentication aborted"
    assert not s.p.authenticated


def test_auth_bad_base64_response_ends_the_exchange() -> None:
    def reply(p: ServerProtocol, ev: Event) -> Reply:
        return Reply(334, "", "") if isinstance(ev, Auth) else default_reply(p, ev)

    s = submission(reply=reply)
    s.feed(b"AUTH LOGIN\r\n!!!\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [Auth, AuthBadResponse, Noop]
    assert s.lines()[1] == "501 5.5.2 invalid base64"


def test_auth_too_long_response_is_500_5_5_6() -> None:
    def reply(p: ServerProtocol, ev: Event) -> Reply:
        return Reply(334, "", "") if isinstance(ev, Auth) else default_reply(p, ev)

    s = submission(reply=reply)
    s.feed(b"AUTH LOGIN\r\n" + b"A" * 20000 + b"\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [Auth, AuthBadResponse, Noop]
    assert s.lines()[1] == "500 5.5.6 authentication line too long"


def test_auth_done_is_authoritative() -> None:
    p = ServerProtocol(Limits(), submission=True, tls_active=True, auth_mechanisms=("PLAIN",))
    p.receive_data(b"EHLO c\r\n")
    p.next_event()
    p.send(p.ehlo_reply("h"))
    p.receive_data(b"AUTH PLAIN AGEAYg==\r\n")
    assert isinstance(p.next_event(), Auth)
    p.auth_done(False)
    p.send(Reply(235, "7.0", "a confused shell"))
    assert not p.authenticated


@pytest.mark.parametrize(
    "kw,line,reply",
    [
        (
            {"submission": False},
            b"AUTH PLAIN",
            "503 5.5.1 authentication only allowed on submission ports",
        ),
        ({"tls_active": False}, b"AUTH PLAIN", "538 5.7.11 authentication requires tls"),
        ({}, b"AUTH CRAM-MD5", "504 5.5.4 mechanism CRAM-MD5 not supported"),
        ({}, b"AUTH", "501 5.5.2 missing mechanism"),
        ({}, b"AUTH PLAIN ", "501 5.5.2 missing initial auth base64 parameter after space"),
        ({}, b"AUTH PLAIN AGE", "501 5.5.2 invalid base64"),
        ({}, b"AUTH PLAIN#", "501 5.5.2 invalid mechanism name"),
    ],
)
def test_auth_refusals(kw: dict[str, object], line: bytes, reply: str) -> None:
    kw.setdefault("submission", True)
    kw.setdefault("tls_active", True)
    s = session(auth_mechanisms=("PLAIN",), **kw)
    s.feed(line + b"\r\n")
    assert s.last_reply() == reply


def test_auth_allowed_without_tls_when_configured() -> None:
    s = submission(tls_active=False, auth_requires_tls=False)
    s.feed(b"AUTH PLAIN AHUAcA==\r\n")
    assert s.events == [Auth("PLAIN", b"\0u\0p")]


def test_auth_twice_and_in_transaction_are_503() -> None:
    s = submission()
    s.feed(b"AUTH PLAIN AHUAcA==\r\nAUTH PLAIN AHUAcA==\r\nMAIL FROM:<u@x.org>\r\n")
    assert s.lines()[1] == "503 5.5.1 already authenticated"
    s.p.authenticated = False  # pretend; the transaction rule is checked after it
    s.feed(b"AUTH PLAIN AHUAcA==\r\n")
    assert s.last_reply() == "503 5.5.1 authentication not allowed during mail transaction"


def test_auth_before_ehlo_is_503() -> None:
    s = Shell(submission=True, tls_active=True, auth_mechanisms=("PLAIN",))
    s.feed(b"AUTH PLAIN AHUAcA==\r\n")
    assert s.last_reply() == "503 5.5.1 no ehlo/helo yet"


# --- STARTTLS ------------------------------------------------------------------------------


def test_starttls_waits_for_tls_and_drops_pipelined_plaintext() -> None:
    s = session()
    s.feed(b"STARTTLS\r\nMAIL FROM:<injected@x.org>\r\n")
    assert s.events == [StartTLS()]
    assert s.p.trailing_data == b"MAIL FROM:<injected@x.org>\r\n"
    assert s.p.next_event() is NEED_DATA
    s.p.start_tls_done()
    assert s.p.tls_active and s.p.hello is None and s.p.pending_input == 0
    s.feed(b"MAIL FROM:<a@x.org>\r\nEHLO c.example\r\n")
    assert [type(e) for e in s.events] == [StartTLS, BadCommand, Ehlo]
    assert "STARTTLS" not in s.lines()[-8:]


def test_starttls_refused_by_shell_keeps_plaintext_session() -> None:
    s = session(reply=only(StartTLS, Reply(454, "7.0", "tls not available")))
    s.feed(b"STARTTLS\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [StartTLS, Noop]
    with pytest.raises(LocalProtocolError):
        s.p.start_tls_done()


@pytest.mark.parametrize(
    "kw,line,reply",
    [
        ({"tls_active": True}, b"STARTTLS", "503 5.5.1 already speaking tls"),
        ({"starttls": False}, b"STARTTLS", "502 5.5.1 STARTTLS not available"),
        ({}, b"STARTTLS now", "501 5.5.2 no arguments expected"),
    ],
)
def test_starttls_refusals(kw: dict[str, object], line: bytes, reply: str) -> None:
    s = session(**kw)
    s.feed(line + b"\r\n")
    assert s.last_reply() == reply


def test_starttls_after_auth_is_503() -> None:
    s = submission(tls_active=False, auth_requires_tls=False)
    s.feed(b"AUTH PLAIN AHUAcA==\r\nSTARTTLS\r\n")
    assert s.last_reply() == "503 5.5.1 cannot starttls after authentication"


def test_starttls_before_ehlo_is_accepted_and_ehlo_is_needed_after() -> None:
    s = Shell()
    s.feed(b"STARTTLS\r\n")
    assert s.last_reply().startswith("220 ")
    s.p.start_tls_done()
    s.feed(b"MAIL FROM:<a@example.org>\r\n")
    assert s.last_reply() == "503 5.5.1 no ehlo/helo yet"
