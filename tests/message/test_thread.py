"""Message-ID/References and the RFC 5256 2.1 base subject."""

import pytest

from app.message.thread import message_id, parse_message_ids, subject_base


def test_message_ids() -> None:
    assert parse_message_ids("<a@b> <c@d>\r\n <e@f>") == ("a@b", "c@d", "e@f")
    assert parse_message_ids("<a@\r\n b>") == ("a@b",)
    assert parse_message_ids("bare@id.example") == ("bare@id.example",)
    assert parse_message_ids("garbage text") == ()
    assert parse_message_ids("Your message of <x@y> (comment)") == ("x@y",)
    assert message_id("<1@x> <2@x>") == "1@x"
    assert message_id("") == ""


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Re: foo", "foo"),
        ("RE: Re: re:foo", "foo"),
        ("Fw: foo", "foo"),
        ("Fwd: foo", "foo"),
        ("Re: [list] foo", "foo"),
        ("[list] Re: foo", "foo"),
        ("Re[2]: foo", "foo"),  # subj-refwd with a blob before the colon
        ("Re: [x]", "[x]"),  # a blob is kept when nothing would remain
        ("foo (fwd)", "foo"),
        ("foo (fwd) (FWD)  ", "foo"),
        ("[fwd: foo]", "foo"),
        ("[Fwd: Re: foo (fwd)]", "foo"),
        ("Re:   many    spaces\there", "many spaces here"),
        ("=?utf-8?q?Re:_caf=C3=A9?=", "café"),
        ("Re: =?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("Reply to me", "Reply to me"),
        ("", ""),
    ],
)
def test_subject_base(subject: str, base: str) -> None:
    assert subject_base(subject) == base
