"""DATA (dot-unstuffing, smuggling checks, size limit) and BDAT of ServerProtocol."""

import json
from pathlib import Path

import pytest

from app.smtp.codes import Reply
from app.smtp.events import (
    BadCommand,
    Bdat,
    BdatEnd,
    ConnectionClosed,
    DataChunk,
    DataEnd,
    DataStart,
    Event,
    Mail,
    Noop,
    Rcpt,
    Refused,
)
from app.smtp.protocol import Limits

from .helpers import Shell, only, transaction

SEQUENCES = json.loads(
    (Path(__file__).parent.parent / "data" / "smtp" / "smtp-smuggling-sequences.json").read_text()
)
SMUGGLING = "500 5.5.2 invalid bare \\r or \\n, may be smtp smuggling"


def run_data(body: bytes, **kw: object) -> Shell:
    s = transaction(**kw)
    s.feed(b"DATA\r\n" + body)
    return s


def end_of(s: Shell) -> DataEnd:
    ends = [e for e in s.events if isinstance(e, DataEnd)]
    assert len(ends) == 1
    return ends[0]


# --- DATA basics -----------------------------------------------------------------


def test_data_is_dot_unstuffed_and_ends_at_crlf_dot_crlf() -> None:
    s = run_data(b"Subject: x\r\n\r\n..leading dot\r\n...\r\n. \r\nlast\r\n.\r\nNOOP\r\n")
    assert s.data() == b"Subject: x\r\n\r\n.leading dot\r\n..\r\n \r\nlast\r\n"
    assert [type(e) for e in s.events][-2:] == [DataEnd, Noop]
    assert end_of(s).error is None
    assert s.lines() == ["354 go ahead", "250 2.0.0 ok", "250 2.0.0 ok"]


def test_empty_message() -> None:
    s = run_data(b".\r\n")
    assert s.data() == b"" and end_of(s) == DataEnd(None)


def test_bare_lf_elsewhere_gets_cr_added() -> None:
    s = run_data(b"a\nb\r\nc\n\r\n.\r\n")
    assert s.data() == b"a\r\nb\r\nc\r\n\r\n"
    assert end_of(s).error is None


@pytest.mark.parametrize("x", [b"X", b"..", b" .", b"x.", b"-"])
def test_lf_x_lf_is_accepted(x: bytes) -> None:
    s = run_data(b"a\r\n\n" + x + b"\nb\r\n.\r\n")
    assert end_of(s).error is None


def test_line_longer_than_1000_octets_is_accepted_as_mox_does() -> None:
    s = run_data(b"x" * 5000 + b"\r\n.\r\n")
    assert s.data() == b"x" * 5000 + b"\r\n" and end_of(s).error is None


def test_transaction_is_over_after_data() -> None:
    s = run_data(b"x\r\n.\r\nRCPT TO:<b@example.com>\r\n")
    assert s.last_reply() == "503 5.5.1 missing MAIL FROM"
    assert not s.p.in_transaction


def test_refused_data_start_does_not_read_data() -> None:
    s = transaction(reply=only(DataStart, Reply(451, "3.0", "try later")))
    s.feed(b"DATA\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [DataStart, Noop]


def test_data_chunks_are_bounded() -> None:
    s = run_data(b"y" * 100_000 + b"\r\n.\r\n", limits=Limits(data_chunk_size=4096))
    chunks = [e.data for e in s.events if isinstance(e, DataChunk)]
    assert all(len(c) <= 4096 for c in chunks) and len(chunks) > 20
    assert b"".join(chunks) == b"y" * 100_000 + b"\r\n"


def test_message_over_size_limit_is_read_to_the_end_then_552() -> None:
    s = run_data(b"z" * 3000 + b"\r\n.\r\nNOOP\r\n", limits=Limits(max_message_size=1000))
    assert end_of(s).error == Reply(552, "3.4", "message too large")
    assert s.lines()[-2:] == ["552 5.3.4 message too large", "250 2.0.0 ok"]
    assert isinstance(s.events[-1], Noop)


def test_size_counts_the_stored_crlf_form() -> None:
    ok = run_data(b"a\r\n" * 10 + b".\r\n", limits=Limits(max_message_size=30))
    assert end_of(ok).error is None
    over = run_data(b"a\n" * 10 + b"b\r\n.\r\n", limits=Limits(max_message_size=30))
    assert end_of(over).error is not None


def test_eof_during_data_closes() -> None:
    s = run_data(b"partial\r\n")
    s.feed(b"")
    assert isinstance(s.events[-1], ConnectionClosed)
    assert not any(isinstance(e, DataEnd) for e in s.events)


def events_for_splits(data: bytes, **kw: object) -> tuple[list[Event], list[list[Event]]]:
    """Events of the whole input in one read, and of every two-way split."""
    whole = transaction(**kw)
    whole.feed(data)
    splits = []
    for i in range(1, len(data)):
        s = transaction(**kw)
        s.feed(data[:i])
        s.feed(data[i:])
        assert s.out == whole.out, i
        splits.append(s.events)
    return whole.events, splits


def test_data_events_are_the_same_at_every_split_position() -> None:
    data = (
        b"DATA\r\nA: b\r\n\r\n..x\r\n.y\r\nbare\nlf\r\n\r\n.\r.\n\r\nend\r\n.\r\n"
        b"MAIL FROM:<c@d.example>\r\nRCPT TO:<e@f.example>\r\nDATA\r\n"
        b"second\r\n" * 4 + b".\r\nNOOP\r\n"
    )
    whole, splits = events_for_splits(data, limits=Limits(data_chunk_size=7))
    assert any(isinstance(e, DataChunk) and len(e.data) == 7 for e in whole)
    for events in splits:
        assert events == whole


def test_byte_by_byte_feeding_matches_one_read() -> None:
    data = b"DATA\r\nhello\r\n..\r\n.\n\r\n\n.\r\nx\r\n.\r\nNOOP\r\n"
    whole = transaction(limits=Limits(data_chunk_size=5))
    whole.feed(data)
    s = transaction(limits=Limits(data_chunk_size=5))
    for b in data:
        s.feed(bytes([b]))
    assert s.events == whole.events


# --- SMTP smuggling (mox v0.0.9 rules) ----------------------------------------------------


def all_sequences() -> list[str]:
    seqs = set(SEQUENCES["inbound_eod_sequences_The-Login"])
    seqs |= set(SEQUENCES["outbound_eod_sequences_The-Login"])
    seqs |= {v for k, v in SEQUENCES["smtpsmug_tests"].items() if k != "pipelining"}
    return sorted(seqs)


def smuggling_session(seq: str) -> bytes:
    """The scanners' message: a fake end of data, a smuggled transaction, the real end,
    then a genuine next transaction."""
    return (
        b"DATA\r\nFrom: a@example.org\r\nTo: b@example.com\r\nSubject: CHECK\r\n\r\n"
        b"TESTING as fake end-of-data sequence!\r\n"
        + seq.encode("latin-1")
        + b"mail FROM:<smuggled@evil.example>\r\nrcpt TO:<b@example.com>\r\ndata\r\n"
        b"From: smuggled@evil.example\r\n\r\nSMUGGLING WORKS\r\n.\r\n"
        b"MAIL FROM:<next@example.org>\r\nRCPT TO:<b@example.com>\r\n"
    )


@pytest.mark.parametrize("seq", all_sequences(), ids=repr)
def test_smuggling_sequence_is_refused_and_the_session_stays_in_sync(seq: str) -> None:
    s = transaction()
    s.feed(smuggling_session(seq))
    kinds = [type(e) for e in s.events if not isinstance(e, DataChunk)]
    assert kinds == [DataStart, DataEnd, Mail, Rcpt]
    err = end_of(s).error
    assert err is not None and err.code == 500 and err.enhanced == "5.5.2"
    assert "smuggling" in err.text
    assert [e for e in s.events if isinstance(e, Mail)] == [Mail("next@example.org", {})]
    assert s.lines()[1].startswith("500 5.5.2 ") and s.lines()[2:] == ["250 2.0.0 ok"] * 2


@pytest.mark.parametrize(
    "seq", ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n", "\r\n\x00.\r\n"], ids=repr
)
def test_smuggling_detection_does_not_depend_on_read_boundaries(seq: str) -> None:
    whole, splits = events_for_splits(smuggling_session(seq), limits=Limits(data_chunk_size=16))
    for events in splits:
        assert events == whole


@pytest.mark.parametrize(
    "body",
    [
        b"a\rb\r\n.\r\n",  # bare CR mid-line
        b"a\r\r\n.\r\n",  # CR CR LF
        b"\r.\r\n.\r\n",
        b".\nx\r\n.\r\n",  # <CRLF>.<LF> right at the start
        b"x\r\n.\nmore\r\n.\r\n",  # <CRLF>.<LF>
        b"x\n.\nmore\r\n.\r\n",  # <LF>.<LF>
        b"x\n.\r\nmore\r\n.\r\n",  # <LF>.<CRLF>
        b"trailing cr\r",  # bare CR just before the end
    ],
)
def test_bare_cr_and_lf_dot_sequences_fail_with_mox_reply(body: bytes) -> None:
    if body.endswith(b"\r"):
        body += b"\r\n.\r\n"
    s = run_data(body + b"NOOP\r\n")
    assert s.lines()[1] == SMUGGLING
    assert isinstance(s.events[-1], Noop)


def test_smuggled_content_is_not_forwarded_after_detection() -> None:
    s = run_data(b"a\n.\nmail FROM:<x@y>\r\n.\r\n")
    assert b"mail FROM" not in s.data()


# --- BDAT (RFC 3030) -------------------------------------------------------------------------


def test_bdat_chunks_and_last() -> None:
    s = transaction()
    s.feed(b"BDAT 5\r\nHelloBDAT 8 LAST\r\n world\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [Bdat, DataChunk, BdatEnd, Bdat, DataChunk, BdatEnd, Noop]
    assert s.data() == b"Hello world\r\n"
    assert s.events[2] == BdatEnd(False, None) and s.events[5] == BdatEnd(True, None)
    assert s.lines() == ["250 2.0.0 ok"] * 3
    assert not s.p.in_transaction


def test_bdat_has_no_dot_handling() -> None:
    s = transaction()
    s.feed(b"BDAT 8 last\r\n.\r\n..x\r\n")
    assert s.data() == b".\r\n..x\r\n"


def test_bdat_zero_last() -> None:
    s = transaction()
    s.feed(b"BDAT 3\r\nabcBDAT 0 LAST\r\n")
    assert s.data() == b"abc"
    assert s.events[-2:] == [Bdat(0, True), BdatEnd(True, None)]


def test_bdat_sizes_split_across_reads_give_the_same_events() -> None:
    data = b"BDAT 9\r\n0123\n5678BDAT 4 LAST\r\nxy\r\nNOOP\r\n"
    whole, splits = events_for_splits(data, limits=Limits(data_chunk_size=3))
    assert b"".join(e.data for e in whole if isinstance(e, DataChunk)) == b"0123\r\n5678xy\r\n"
    for events in splits:
        assert events == whole


def test_bdat_without_transaction_discards_its_chunk() -> None:
    s = transaction()
    s.feed(b"RSET\r\nBDAT 14 LAST\r\nMAIL FROM:<>\r\nNOOP\r\n")
    assert [type(e) for e in s.events] == [type(s.events[0]), BadCommand, Noop]
    assert s.lines()[1] == "503 5.5.1 missing MAIL FROM"


def test_bdat_with_no_valid_recipient_is_554_after_discarding() -> None:
    s = transaction(reply=only(Rcpt, Reply(550, "1.1", "no")))
    s.feed(
        b"RSET\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 4 LAST\r\nDATANOOP\r\n"
    )
    assert isinstance(s.events[-2], Refused) and isinstance(s.events[-1], Noop)
    assert s.lines()[-2] == "554 5.5.1 no valid recipients"


def test_data_after_bdat_is_503() -> None:
    s = transaction()
    s.feed(b"BDAT 2\r\nabDATA\r\n")
    assert s.last_reply() == "503 5.5.1 DATA not allowed after BDAT"


def test_bdat_over_size_limit_is_552_after_reading_the_chunk() -> None:
    s = transaction(limits=Limits(max_message_size=10))
    s.feed(b"BDAT 8\r\n12345678BDAT 8 LAST\r\n12345678NOOP\r\n")
    assert s.events[-2] == BdatEnd(True, Reply(552, "3.4", "message too large"))
    assert isinstance(s.events[-1], Noop)
    assert not s.p.in_transaction


def test_failed_bdat_chunk_fails_the_transaction() -> None:
    s = transaction(reply=only(BdatEnd, Reply(451, "3.0", "disk trouble")))
    s.feed(b"BDAT 2\r\nabBDAT 2 LAST\r\ncd")
    assert [type(e) for e in s.events] == [Bdat, DataChunk, BdatEnd, BadCommand]
    assert s.lines() == ["451 4.3.0 disk trouble", "503 5.5.1 missing MAIL FROM"]


def test_bdat_bare_cr_fails_the_transaction() -> None:
    s = transaction()
    s.feed(b"BDAT 3 LAST\r\na\rb")
    assert s.events[-1] == BdatEnd(True, Reply(554, "6.0", "bare carriage return in message data"))


def test_bdat_cr_lf_split_over_chunks_is_fine() -> None:
    s = transaction()
    s.feed(b"BDAT 2\r\na\rBDAT 1 LAST\r\n\n")
    assert s.data() == b"a\r\n" and s.events[-1] == BdatEnd(True, None)


def test_bdat_trailing_cr_at_last_is_bare() -> None:
    s = transaction()
    s.feed(b"BDAT 2 LAST\r\na\r")
    end = s.events[-1]
    assert isinstance(end, BdatEnd) and end.error is not None


@pytest.mark.parametrize(
    "line", [b"BDAT", b"BDAT x", b"BDAT -1", b"BDAT 1 FIRST", b"BDAT 123456789012345678901"]
)
def test_bdat_syntax_errors_are_501(line: bytes) -> None:
    s = transaction()
    s.feed(line + b"\r\n")
    assert s.last_reply().startswith("501 5.5.2 ")


def test_bdat_large_chunk_is_streamed() -> None:
    s = transaction(limits=Limits(data_chunk_size=1000))
    s.feed(b"BDAT 100000 LAST\r\n")
    for _ in range(100):
        s.feed(b"q" * 1000)
    chunks = [e.data for e in s.events if isinstance(e, DataChunk)]
    assert len(chunks) == 100 and all(len(c) == 1000 for c in chunks)
    assert s.p.pending_input == 0
