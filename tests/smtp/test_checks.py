"""Message authentication on delivery: SPF, DKIM, DMARC, DNSBL results in one
Authentication-Results header, DMARC reject and quarantine, forged results removed."""

import smtplib
from collections.abc import Iterator

import pytest

from app.mailauth import dkim
from app.mailauth.dkim_keys import generate_ed25519, load_private_key, txt_record
from tests.mailserver import MailServer, setup_server, start

KEY = generate_ed25519()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    s = setup_server(
        tmp_path_factory.mktemp("checks"),
        services=("smtp",),
        extra_config='[checks]\ndnsbl_zones = ["bl.test"]\n',
    )
    d = s.dns
    d.add("good.example", "TXT", '"v=spf1 ip4:127.0.0.0/8 -all"')
    d.add("sel._domainkey.good.example", "TXT", txt_record(KEY))
    d.add("_dmarc.good.example", "TXT", '"v=DMARC1; p=reject"')
    d.add("strict.example", "TXT", '"v=spf1 ip4:192.0.2.1 -all"')
    d.add("_dmarc.strict.example", "TXT", '"v=DMARC1; p=reject"')
    d.add("careful.example", "TXT", '"v=spf1 -all"')
    d.add("_dmarc.careful.example", "TXT", '"v=DMARC1; p=quarantine"')
    d.add("1.0.0.127.in-addr.arpa", "PTR", "localhost.test.")
    d.add("localhost.test", "A", "127.0.0.1")
    # block list with its health-check entries (RFC 5782 5): 127.0.0.2 listed
    d.add("2.0.0.127.bl.test", "A", "127.0.0.2")
    d.add("9.0.0.127.bl.test", "A", "127.0.0.2")
    d.add("9.0.0.127.bl.test", "TXT", '"listed for testing"')
    start(s)
    yield s
    assert s.stop() == 0
    assert s.proc is not None and s.proc.tracebacks() == []


def send(server: MailServer, sender: str, msg: bytes, source: str = "127.0.0.1") -> None:
    with smtplib.SMTP(
        "127.0.0.1",
        server.ports["smtp"],
        local_hostname="client.example",
        source_address=(source, 0),
        timeout=30,
    ) as c:
        c.sendmail(sender, ["you@example.org"], msg)


def signed(msg: bytes) -> bytes:
    sel = dkim.Selector("good.example", "sel", load_private_key(KEY))
    return dkim.sign(msg, selectors=[sel]) + msg


def test_passing_message_gets_one_result_per_line(server: MailServer) -> None:
    msg = b"From: Alice <alice@good.example>\r\nTo: you@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
    sent = signed(msg)  # once: the signature's t= is the current second
    send(server, "alice@good.example", sent)
    stored = server.messages("you")[-1]
    ar = stored[stored.index(b"Authentication-Results:") : stored.index(b"Received-SPF:")]
    lines = ar.decode().split("\r\n")
    assert lines[0] == "Authentication-Results: mail.test.example;"
    assert lines[1] == "\tiprev=pass (localhost.test) policy.iprev=127.0.0.1;"
    assert lines[2].startswith("\tspf=pass smtp.mailfrom=alice@good.example")
    assert lines[3].startswith(
        "\tdkim=pass header.d=good.example header.s=sel header.a=ed25519-sha256"
    )
    assert lines[4].startswith("\tdmarc=pass header.from=good.example")
    assert lines[5].startswith("\tarc=none")
    assert b"Received-SPF: pass" in stored
    assert stored.endswith(sent)


def test_dmarc_reject_is_550_5_7_26(server: MailServer) -> None:
    n = len(server.messages("you"))
    msg = b"From: x@strict.example\r\nSubject: forged\r\n\r\nbad\r\n"
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, "x@strict.example", msg)
    assert e.value.smtp_code == 550 and e.value.smtp_error.startswith(b"5.7.26")
    assert len(server.messages("you")) == n


def test_dmarc_quarantine_goes_to_junk(server: MailServer) -> None:
    n = len(server.messages("you", "Junk"))
    send(server, "x@careful.example", b"From: x@careful.example\r\nSubject: q\r\n\r\nq\r\n")
    junk = server.messages("you", "Junk")
    assert len(junk) == n + 1 and b"dmarc=fail" in junk[-1]


def test_forged_results_claiming_our_host_are_removed(server: MailServer) -> None:
    msg = (
        b"Authentication-Results: mail.test.example; spf=pass smtp.mailfrom=x@y\r\n"
        b"Authentication-Results: other.example; spf=pass\r\n"
        b"From: a@nowhere.example\r\nSubject: f\r\n\r\nforged\r\n"
    )
    send(server, "a@nowhere.example", msg)
    stored = server.messages("you")[-1]
    assert stored.count(b"Authentication-Results: mail.test.example;") == 1  # ours only
    assert b"Authentication-Results: other.example; spf=pass" in stored


def test_sender_on_a_healthy_block_list_goes_to_junk(server: MailServer) -> None:
    n = len(server.messages("you", "Junk"))
    send(
        server,
        "a@nowhere.example",
        b"From: a@nowhere.example\r\nSubject: bl\r\n\r\nx\r\n",
        source="127.0.0.9",
    )
    assert len(server.messages("you", "Junk")) == n + 1


def test_dmarc_evaluations_are_kept_for_aggregate_reports(server: MailServer) -> None:
    from app.store.reports import ReportsDB

    send(
        server,
        "alice@good.example",
        signed(b"From: alice@good.example\r\nSubject: r\r\n\r\nreport me\r\n"),
    )
    with pytest.raises(smtplib.SMTPDataError):
        send(server, "x@strict.example", b"From: x@strict.example\r\nSubject: r\r\n\r\nr\r\n")
    db = ReportsDB(server.data / "reports.db")  # rows are written before the reply
    try:
        evs = {e.policy_domain: e for e in db.evaluations()}
    finally:
        db.close()
    good = evs["good.example"]
    assert (good.dmarc, good.disposition, good.aligned_dkim) == ("pass", "none", True)
    assert good.dkim == [{"domain": "good.example", "selector": "sel", "result": "pass"}]
    assert good.source_ip == "127.0.0.1" and good.envelope_to == "example.org"
    strict = evs["strict.example"]
    assert (strict.dmarc, strict.disposition, strict.aligned_spf) == ("fail", "reject", False)
