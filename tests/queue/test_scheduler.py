"""The scheduler with a fake attempt and an injected clock: schedule, jitter, DSNs,
concurrency limits, hold/unhold, schedule-now, transports, fail and drop."""

import asyncio
import email
import email.policy
import random
from pathlib import Path
from typing import Any

import pytest

from app.queue.scheduler import BASE_BACKOFF, backoff
from app.queue.service import QueueService
from app.queue.store import Filter, NewMessage, QueueError
from tests.queue.fakes import (
    FakeAttempt,
    FakeClock,
    config,
    ok,
    perm,
    start_queue,
    temp,
)

MSG = (
    b"From: You <you@example.org>\r\nTo: friend@remote.example\r\n"
    b"Subject: hello there\r\nMessage-ID: <m1@example.org>\r\n\r\nbody\r\n"
)


def new(*rcpts: str, sender: str = "you@example.org", **kw: object) -> NewMessage:
    return NewMessage(
        account="you",
        sender=sender,
        recipients=rcpts or ("friend@remote.example",),
        content=MSG,
        message_id="<m1@example.org>",
        subject="hello there",
        **kw,  # type: ignore[arg-type]
    )


async def settle(q: QueueService) -> None:
    q.scheduler.kick()
    await q.scheduler.wait_idle()


def parse(msg: bytes) -> email.message.EmailMessage:
    m = email.message_from_bytes(msg, policy=email.policy.default)
    assert isinstance(m, email.message.EmailMessage)
    return m


def recipient_fields(dsn: bytes) -> list[Any]:
    report: Any = parse(dsn)
    status = report.get_payload()[1]
    blocks = status.get_payload()
    return list(blocks[1:])


async def test_first_attempt_at_once_and_delivered_entry_leaves(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=ok)
    q, accounts, _ = await start_queue(tmp_path, fake)
    try:
        ids = await q.enqueue(new())
        await q.scheduler.wait_idle()
        assert len(fake.calls) == 1
        call = fake.calls[0]
        assert call.recipients == ["friend@remote.example"]
        assert call.domain == "remote.example"
        assert call.attempt_number == 1
        assert call.sender == "you@example.org"
        assert call.transport["kind"] == "direct"
        assert call.message == MSG
        assert await q.store.entries(Filter(ids=tuple(ids), include_failed=True)) == []
        assert accounts.delivered == []  # no DSN for a delivered message
    finally:
        await q.stop()


async def test_retry_schedule_delayed_dsn_after_5th_and_failure_after_8th(
    tmp_path: Path,
) -> None:
    fake = FakeAttempt(reply=temp)
    q, accounts, clock = await start_queue(tmp_path, fake)
    try:
        await q.enqueue(new())
        await q.scheduler.wait_idle()
        for n in range(1, 9):
            assert len(fake.calls) == n
            assert fake.calls[-1].attempt_number == n
            if n == 8:
                break
            (e,) = await q.store.entries()
            assert e.attempts == n
            assert e.last_error == "451 4.3.0 try again later"
            assert e.last_attempt is not None
            wait = e.next_attempt - e.last_attempt
            # RFC 5321 4.5.4.1 via mox: 7.5 min ± 5 s, doubled per earlier attempt.
            assert (BASE_BACKOFF - 5) * 2 ** (n - 1) <= wait <= (BASE_BACKOFF + 4) * 2 ** (n - 1)
            assert len(accounts.delivered) == (1 if n >= 5 else 0)
            # Not a moment early: one second before the due time nothing happens.
            clock.t = e.next_attempt - 1
            await settle(q)
            assert len(fake.calls) == n
            clock.t = e.next_attempt
            await settle(q)
        assert await q.store.entries(Filter(include_failed=True)) == []
        delayed, failed = (parse(d.message) for d in accounts.delivered)
        assert delayed["Subject"] == "mail delivery delayed"
        assert failed["Subject"] == "mail delivery failed"
        (r,) = recipient_fields(accounts.delivered[0].message)
        assert r["Action"] == "delayed" and r["Status"] == "4.3.0"
        assert r["Will-Retry-Until"]
        (r,) = recipient_fields(accounts.delivered[1].message)
        assert r["Action"] == "failed" and r["Status"] == "5.3.0"
        assert r["Diagnostic-Code"] == "smtp; 451 4.3.0 try again later"
        assert r["Remote-MTA"] == "dns; mx.remote.example"
        assert {d.account for d in accounts.delivered} == {"you"}
        assert {d.mailbox for d in accounts.delivered} == {"Inbox"}
    finally:
        await q.stop()


def test_backoff_jitter_bounds() -> None:
    rng = random.Random(1)
    for n in range(8):
        seen = {backoff(n, rng) for _ in range(2000)}
        assert min(seen) == (BASE_BACKOFF - 5) * 2**n
        assert max(seen) == (BASE_BACKOFF + 4) * 2**n


async def test_permanent_failure_sends_failure_dsn_at_once(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=perm)
    q, accounts, _ = await start_queue(tmp_path, fake)
    try:
        await q.enqueue(new())
        await q.scheduler.wait_idle()
        assert len(fake.calls) == 1
        assert await q.store.entries(Filter(include_failed=True)) == []
        (d,) = accounts.delivered
        assert d.message.startswith(b"Return-Path: <>\r\n")
        (r,) = recipient_fields(d.message)
        assert r["Final-Recipient"] == "rfc822; friend@remote.example"
        assert r["Status"] == "5.1.1"
        assert r["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user here"
    finally:
        await q.stop()


async def test_null_sender_gets_no_dsn(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=perm)
    q, accounts, _ = await start_queue(tmp_path, fake)
    try:
        await q.enqueue(new(sender=""))
        await q.scheduler.wait_idle()
        assert len(fake.calls) == 1
        assert accounts.delivered == []
        assert await q.store.entries(Filter(include_failed=True)) == []
    finally:
        await q.stop()


async def test_recipients_grouped_by_domain_in_one_transaction(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=ok)
    q, _, _ = await start_queue(tmp_path, fake)
    try:
        await q.enqueue(new("a@remote.example", "b@remote.example", "c@other.example"))
        await q.scheduler.wait_idle()
        got = sorted((c.domain, sorted(c.recipients)) for c in fake.calls)
        assert got == [
            ("other.example", ["c@other.example"]),
            ("remote.example", ["a@remote.example", "b@remote.example"]),
        ]
    finally:
        await q.stop()


async def test_partial_failure_keeps_only_failed_recipient(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=lambda a: ok(a) if a.startswith("a@") else temp(a))
    q, accounts, _ = await start_queue(tmp_path, fake)
    try:
        await q.enqueue(new("a@remote.example", "b@remote.example"))
        await q.scheduler.wait_idle()
        (e,) = await q.store.entries()
        assert e.recipient == "b@remote.example" and e.attempts == 1
        assert accounts.delivered == []
    finally:
        await q.stop()


async def test_one_delivery_at_a_time_per_domain_and_worker_limit(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=ok, gate=asyncio.Event())
    cfg = config("workers = 2\nper_domain = 1\n")
    q, _, _ = await start_queue(tmp_path, fake, cfg)
    try:
        for i in range(3):
            await q.enqueue(new(f"r{i}@one.example"))
            await q.enqueue(new(f"r{i}@two.example"))
            await q.enqueue(new(f"r{i}@three.example"))
        await fake.wait_calls(2)
        assert fake.max_total == 2
        assert q.scheduler.running == 2
        assert fake.gate is not None
        fake.gate.set()
        await q.scheduler.wait_idle()
        assert len(fake.calls) == 9
        assert max(fake.max_active.values()) == 1
        assert fake.max_total == 2
    finally:
        await q.stop()


async def test_hold_and_unhold(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=ok)
    q, _, _ = await start_queue(tmp_path, fake)
    try:
        (qid,) = await q.enqueue(new(hold=True))
        await q.scheduler.wait_idle()
        assert fake.calls == []
        res = await q.ctl("queue.list", {})
        assert [(r["id"], r["hold"]) for r in res] == [(qid, True)]
        await q.ctl("queue.unhold", {"ids": [qid]})
        await q.scheduler.wait_idle()
        assert len(fake.calls) == 1
        # hold an entry waiting for a retry: it is not attempted even when due
        fake.reply = temp
        (qid2,) = await q.enqueue(new())
        await q.scheduler.wait_idle()
        assert (await q.ctl("queue.hold", {"to": "friend"}))["ids"] == [qid2]
        await q.ctl("queue.schedule", {"ids": [qid2], "now": True, "duration": 0})
        await q.scheduler.wait_idle()
        assert len(fake.calls) == 2
    finally:
        await q.stop()


async def test_schedule_now_and_relative(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=temp)
    q, _, clock = await start_queue(tmp_path, fake)
    try:
        (qid,) = await q.enqueue(new())
        await q.scheduler.wait_idle()
        (e,) = await q.store.entries()
        await q.ctl("queue.schedule", {"ids": [qid], "duration": 60})
        (e2,) = await q.store.entries()
        assert e2.next_attempt == e.next_attempt + 60
        await q.ctl("queue.schedule", {"ids": [qid], "now": True, "duration": 0})
        await q.scheduler.wait_idle()
        assert len(fake.calls) == 2
        assert fake.calls[-1].attempt_number == 2
        assert clock.t == e.last_attempt  # no time passed: it was the command
    finally:
        await q.stop()


async def test_changing_commands_need_a_filter(tmp_path: Path) -> None:
    q, _, _ = await start_queue(tmp_path, FakeAttempt(reply=temp))
    try:
        for cmd in ("hold", "unhold", "fail", "drop", "schedule", "transport"):
            with pytest.raises(QueueError):
                await q.ctl(f"queue.{cmd}", {})
    finally:
        await q.stop()


async def test_transport_change_and_fail_transport(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=temp)
    cfg = config(
        "",
        extra=(
            '[queue.transports.relay]\nkind = "smarthost"\nhost = "relay.example"\n'
            'tls = "implicit"\n'
            '[queue.transports.refuse]\nkind = "fail"\nfail_code = 554\n'
            'fail_text = "not allowed"\n'
        ),
    )
    q, accounts, _ = await start_queue(tmp_path, fake, cfg)
    try:
        (qid,) = await q.enqueue(new())
        await q.scheduler.wait_idle()
        assert fake.calls[-1].transport["kind"] == "direct"
        with pytest.raises(QueueError, match="no transport"):
            await q.ctl("queue.transport", {"ids": [qid], "transport": "nosuch"})
        await q.ctl("queue.transport", {"ids": [qid], "transport": "relay"})
        await q.ctl("queue.schedule", {"ids": [qid], "now": True, "duration": 0})
        await q.scheduler.wait_idle()
        t = fake.calls[-1].transport
        assert (t["kind"], t["host"], t["port"], t["tls"]) == (
            "smarthost",
            "relay.example",
            465,
            "implicit",
        )
        await q.ctl("queue.transport", {"ids": [qid], "transport": "refuse"})
        await q.ctl("queue.schedule", {"ids": [qid], "now": True, "duration": 0})
        await q.scheduler.wait_idle()
        assert len(fake.calls) == 2  # the fail transport makes no attempt
        assert await q.store.entries(Filter(include_failed=True)) == []
        (d,) = accounts.delivered
        (r,) = recipient_fields(d.message)
        assert r["Diagnostic-Code"] == "smtp; 554 not allowed"
    finally:
        await q.stop()


async def test_routes_pick_transport_by_attempts(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=temp)
    cfg = config(
        "",
        extra=(
            '[queue.transports.relay]\nkind = "smarthost"\nhost = "relay.example"\n'
            '[queue.routes.late]\ntransport = "relay"\nto_domains = [".example"]\n'
            "min_attempts = 1\n"
        ),
    )
    q, _, clock = await start_queue(tmp_path, fake, cfg)
    try:
        await q.enqueue(new())
        await q.scheduler.wait_idle()
        (e,) = await q.store.entries()
        clock.t = e.next_attempt
        await settle(q)
        assert [c.transport["kind"] for c in fake.calls] == ["direct", "smarthost"]
    finally:
        await q.stop()


async def test_fail_sends_dsn_and_drop_does_not(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=temp)
    q, accounts, _ = await start_queue(tmp_path, fake)
    try:
        (a,) = await q.enqueue(new("a@remote.example"))
        (b,) = await q.enqueue(new("b@remote.example"))
        await q.scheduler.wait_idle()
        assert (await q.ctl("queue.fail", {"ids": [a]}))["count"] == 1
        (d,) = accounts.delivered
        (r,) = recipient_fields(d.message)
        assert r["Final-Recipient"] == "rfc822; a@remote.example"
        assert "administrator" in r["Diagnostic-Code"]
        assert (await q.ctl("queue.drop", {"to": "b@"}))["count"] == 1
        assert len(accounts.delivered) == 1
        assert await q.store.entries(Filter(include_failed=True)) == []
        assert b
    finally:
        await q.stop()


async def test_local_recipient_never_enters_queue(tmp_path: Path) -> None:
    q, _, _ = await start_queue(tmp_path, FakeAttempt())
    try:
        with pytest.raises(QueueError, match="local"):
            await q.enqueue(new("other@example.org"))
        assert await q.store.entries() == []
    finally:
        await q.stop()


async def test_failed_entry_dsn_resent_after_restart(tmp_path: Path) -> None:
    """A crash after the final failure committed but before the DSN was stored:
    the next start sends it."""
    fake = FakeAttempt(reply=temp)
    q, _, clock = await start_queue(tmp_path, fake)
    (qid,) = await q.enqueue(new())
    await q.scheduler.wait_idle()
    await q.store.update(Filter(ids=(qid,)), {"state": 1, "last_error": "550 gone"})
    await q.stop()
    q2, accounts2, _ = await start_queue(tmp_path, FakeAttempt(), clock=clock)
    try:
        assert q2._recovery is not None
        await q2._recovery
        (d,) = accounts2.delivered
        assert b"550 gone" in d.message
        assert await q2.store.entries(Filter(include_failed=True)) == []
    finally:
        await q2.stop()


async def test_attempt_exception_is_a_temporary_failure(tmp_path: Path) -> None:
    def boom(address: str) -> object:
        raise RuntimeError("bug")

    fake = FakeAttempt(reply=boom)  # type: ignore[arg-type]
    q, _, _ = await start_queue(tmp_path, fake)
    try:
        await q.enqueue(new())
        await q.scheduler.wait_idle()
        (e,) = await q.store.entries()
        assert e.attempts == 1 and "internal error" in e.last_error
    finally:
        await q.stop()


async def test_clock_is_injected_not_slept(tmp_path: Path) -> None:
    clock = FakeClock()
    q, _, _ = await start_queue(tmp_path, FakeAttempt(reply=temp), clock=clock)
    try:
        await q.enqueue(new())
        await q.scheduler.wait_idle()
        (e,) = await q.store.entries()
        assert e.created == clock.t and e.last_attempt == clock.t
    finally:
        await q.stop()


async def test_localserve_never_leaves_the_machine(tmp_path: Path) -> None:
    fake = FakeAttempt(reply=ok)
    cfg = config(
        "",
        extra=(
            'localserve = true\n[listeners.local]\nips = ["127.0.0.1"]\n'
            "[listeners.local.smtp]\nenabled = true\nport = 1025\n"
        ),
    )
    q, accounts, clock = await start_queue(tmp_path, fake, cfg)
    try:
        await q.enqueue(new("friend@far.example"))
        await q.enqueue(new("queuepermerror@any.example"))
        await q.enqueue(new("queuetemperror@any.example"))
        await q.scheduler.wait_idle()
        (call,) = fake.calls  # only the ordinary recipient is really attempted
        t = call.transport
        assert (t["kind"], t["host"], t["port"], t["tls"]) == (
            "smarthost",
            "127.0.0.1",
            1025,
            "none",
        )
        (d,) = accounts.delivered  # permerror: failure DSN at once
        (r,) = recipient_fields(d.message)
        assert r["Final-Recipient"] == "rfc822; queuepermerror@any.example"
        assert r["Diagnostic-Code"] == "smtp; 550 5.0.0 simulated permanent error"
        (e,) = await q.store.entries()  # temperror: retried on schedule
        assert e.recipient == "queuetemperror@any.example" and e.attempts == 1
        assert e.last_error == "451 4.0.0 simulated temporary error"
        clock.t = e.next_attempt
        await settle(q)
        (e,) = await q.store.entries()
        assert e.attempts == 2 and len(fake.calls) == 1
    finally:
        await q.stop()


async def test_a_backlog_to_one_domain_does_not_hold_up_another(tmp_path: Path) -> None:
    """More due entries for one busy domain than the scheduler reads at a time (it leaves
    busy domains out of its reads): the other domain's message goes out at once."""
    from app.queue.scheduler import DISPATCH_BATCH

    fake = FakeAttempt(reply=ok, gate=asyncio.Event())
    cfg = config("workers = 4\nper_domain = 1\n")
    q, _, _ = await start_queue(tmp_path, fake, cfg)
    try:
        for i in range(DISPATCH_BATCH + 50):
            await q.enqueue(new(f"r{i}@busy.example", hold=True))
        await q.enqueue(new("late@other.example", hold=True))
        await q.ctl("queue.unhold", {"all": True})  # all due at once, busy.example first
        await asyncio.wait_for(fake.wait_calls(2), 10)  # other.example is not starved
        assert sorted(c.domain for c in fake.calls) == ["busy.example", "other.example"]
        assert q.scheduler.running == 2  # one per domain; nothing else is due
        assert fake.gate is not None
        fake.gate.set()
        await q.scheduler.wait_idle()
        assert len(fake.calls) == DISPATCH_BATCH + 51
        assert fake.max_active["busy.example"] == 1
    finally:
        await q.stop()
