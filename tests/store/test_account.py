"""Opening accounts, delivering and reading back messages."""

import asyncio
import os
from pathlib import Path

import pytest

from app.store import (
    AccountInUse,
    AccountStore,
    Flag,
    MailboxNotFound,
    SpecialUse,
    StoreClosed,
    StoreRuntime,
    check_account,
)
from tests.store.conftest import message


async def test_new_account_has_the_six_mailboxes_all_subscribed(store: AccountStore) -> None:
    boxes = {mb.name: mb for mb in store.list_mailboxes()}
    assert set(boxes) == {"Inbox", "Sent", "Archive", "Trash", "Drafts", "Junk"}
    assert boxes["Inbox"].special_use is None
    assert boxes["Sent"].special_use is SpecialUse.SENT
    assert boxes["Drafts"].special_use is SpecialUse.DRAFTS
    assert boxes["Junk"].special_use is SpecialUse.JUNK
    assert len({mb.uidvalidity for mb in boxes.values()}) == 6
    assert all(mb.uidnext == 1 and mb.total == 0 for mb in boxes.values())
    assert set(store.subscriptions()) == set(boxes)


async def test_small_message_is_stored_inline_and_reads_back_byte_exact(
    store: AccountStore,
) -> None:
    data = message(1)
    d = await store.deliver("Inbox", data)
    assert (d.uid, d.size, d.message_id) == (1, len(data), "m1@example.org")
    [m] = await store.messages(d.mailbox_id)
    assert m.inline and m.size == len(data)
    assert await store.read_message(m) == data
    with await store.open_message(m) as f:
        assert f.read() == data
    assert not any((store.path / "msg").rglob("*/*"))


async def test_large_message_is_stored_as_file_and_reads_back_byte_exact(
    store: AccountStore,
) -> None:
    data = message(2, body_size=store.inline_threshold + 10)
    d = await store.deliver("Inbox", data)
    [m] = await store.messages(d.mailbox_id)
    assert m.file is not None and not m.inline
    assert (store.path / "msg" / m.file).stat().st_size == len(data) == m.size
    assert await store.read_message(m) == data
    with await store.open_message(m) as f:
        assert f.read() == data


async def test_spool_file_delivery_stores_large_and_small_files(
    store: AccountStore, tmp_path: Path
) -> None:
    big = tmp_path / "big.eml"
    big.write_bytes(message(3, body_size=3 * store.inline_threshold))
    small = tmp_path / "small.eml"
    small.write_bytes(message(4))
    d1 = await store.deliver("Inbox", big)
    await store.deliver("Inbox", small)
    m1, m2 = await store.messages(d1.mailbox_id)
    assert m1.file is not None and m2.inline
    assert await store.read_message(m1) == big.read_bytes()
    assert await store.read_message(m2) == small.read_bytes()
    assert d1.message_id == "m3@example.org"


@pytest.mark.parametrize("body_size", [10, 200 * 1024])
async def test_bare_lf_gets_cr_and_recorded_size_is_stored_size(
    store: AccountStore, tmp_path: Path, body_size: int
) -> None:
    raw = b"Subject: lf\n\n" + (b"line\n" * (body_size // 5))
    fixed = raw.replace(b"\n", b"\r\n")
    d = await store.deliver("Inbox", raw)
    spool = tmp_path / "lf.eml"
    spool.write_bytes(raw)
    d2 = await store.deliver("Inbox", spool)
    for m in await store.messages(d.mailbox_id):
        assert await store.read_message(m) == fixed
        assert m.size == len(fixed)
        if m.file:
            assert (store.path / "msg" / m.file).stat().st_size == len(fixed)
    assert d.size == d2.size == len(fixed)
    assert store.quota_usage().usage == 2 * len(fixed)


async def test_read_range_returns_the_requested_bytes(store: AccountStore) -> None:
    small = message(5)
    large = message(6, body_size=store.inline_threshold * 2)
    await store.deliver("Inbox", small)
    await store.deliver("Inbox", large)
    for m, data in zip(
        await store.messages(store.mailbox("Inbox").id), [small, large], strict=True
    ):
        assert await store.read_range(m, 10, 20) == data[10:30]
        assert await store.read_range(m, len(data) - 3, None) == data[-3:]
        assert await store.read_range(m, len(data) + 5, 10) == b""


async def test_delivery_to_a_missing_mailbox_raises_and_stores_nothing(
    store: AccountStore,
) -> None:
    with pytest.raises(MailboxNotFound):
        await store.deliver("Nope", message())
    with pytest.raises(MailboxNotFound):
        await store.deliver("Nope", message(body_size=store.inline_threshold))
    assert store.quota_usage().usage == 0
    assert check_account(store.path) == []


async def test_inbox_name_is_case_insensitive(store: AccountStore) -> None:
    d = await store.deliver("INBOX", message())
    assert store.mailbox("inbox").id == d.mailbox_id == store.mailbox("Inbox").id


async def test_summary_and_delivery_fields_are_stored(store: AccountStore) -> None:
    data = (
        b"Subject: Re: hello\r\nMessage-ID: <a@b>\r\nIn-Reply-To: <p@b>\r\n"
        b"References: <o@b> <p@b>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\nhi\r\n"
    )
    d = await store.deliver("Inbox", data, flags={Flag.SEEN}, keywords={"$Forwarded"})
    [m] = await store.messages(d.mailbox_id, with_structure=True)
    assert m.message_id == "a@b"
    assert m.in_reply_to == ("p@b",)
    assert m.references == ("o@b", "p@b")
    assert m.date is not None and m.date.utcoffset() is not None
    assert m.structure
    assert m.flags == {Flag.SEEN} and m.keywords == {"$forwarded"}
    assert m.modseq == m.createseq == d.modseq


async def test_opening_an_open_account_returns_the_same_object(
    runtime: StoreRuntime, store: AccountStore
) -> None:
    again = await AccountStore.open(store.path, name="mjl", runtime=runtime)
    assert again is store
    await again.close()
    await store.deliver("Inbox", message())  # still open: one reference left


async def test_a_second_runtime_cannot_open_an_open_account(store: AccountStore) -> None:
    other = StoreRuntime(workers=1)
    try:
        with pytest.raises(AccountInUse):
            await AccountStore.open(store.path, name="mjl", runtime=other)
    finally:
        await other.close()


async def test_accounts_share_one_runtime_and_persist_across_reopen(
    runtime: StoreRuntime, tmp_path: Path
) -> None:
    a = await AccountStore.open(tmp_path / "a", name="a", runtime=runtime)
    b = await AccountStore.open(tmp_path / "b", name="b", runtime=runtime)
    await asyncio.gather(*(s.deliver("Inbox", message(i)) for i in range(5) for s in (a, b)))
    await a.close()
    await b.close()
    with pytest.raises(StoreClosed):
        await a.deliver("Inbox", message())
    a = await AccountStore.open(tmp_path / "a", name="a", runtime=runtime)
    assert len(await a.messages(a.mailbox("Inbox").id)) == 5
    assert len(os.listdir(tmp_path / "b")) >= 2
    await a.close()
