"""IMAP ENVELOPE fields (RFC 3501 7.4.2)."""

from app.message.envelope import Envelope, EnvelopeAddress, envelope_from_header
from app.message.headers import parse_header


def env(data: bytes) -> Envelope:
    return envelope_from_header(parse_header(data))


def test_raw_strings_and_addresses() -> None:
    e = env(
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
        b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>\r\n"
        b"To: imap@cac.washington.edu\r\n"
        b'Cc: minutes@CNRI.Reston.VA.US, "John Klensin" <KLENSIN@MIT.EDU>\r\n'
        b"Message-ID: <B27397-0100000@cac.washington.edu>\r\n"
        b"In-Reply-To: <x@y>\r\n"
        b"\r\n"
    )
    assert e.date == "Mon, 7 Feb 1994 21:52:25 -0800 (PST)"
    assert e.subject == "=?utf-8?q?caf=C3=A9?=" and e.decoded_subject() == "café"
    assert e.from_ == (EnvelopeAddress("=?utf-8?q?J=C3=B6rg?=", None, "joerg", "example.de"),)
    assert e.sender == e.from_ and e.reply_to == e.from_  # defaults from From
    assert e.cc[1] == EnvelopeAddress("John Klensin", None, "KLENSIN", "MIT.EDU")
    assert e.message_id == "<B27397-0100000@cac.washington.edu>"
    assert e.in_reply_to == "<x@y>" and e.bcc == ()
    pd = e.parsed_date()
    assert pd is not None and pd.utcoffset() is not None


def test_group_markers_and_route() -> None:
    e = env(b"To: A Group: a@b.test;, <@r.test:c@d.test>\r\n\r\n")
    assert e.to == (
        EnvelopeAddress(None, None, "A Group", None),
        EnvelopeAddress(None, None, "a", "b.test"),
        EnvelopeAddress(None, None, None, None),
        EnvelopeAddress(None, "@r.test", "c", "d.test"),
    )


def test_missing_domain_is_not_nil() -> None:
    e = env(b"From: nobody\r\n\r\n")
    assert e.from_ == (EnvelopeAddress(None, None, "nobody", ""),)


def test_list_round_trip() -> None:
    e = env(b"From: a@b.test\r\nSender: s@b.test\r\nSubject: x\r\n\r\n")
    assert Envelope.from_list(e.to_list()) == e
    assert e.sender[0].mailbox == "s"
