"""Flags, keywords, expunge, copy, move, CONDSTORE/QRESYNC state and exact counts."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.store import AccountStore, Flag, InvalidFlag, MessageGone, StoreRuntime, check_account
from app.store.account import UID_TYPECODE
from app.store.types import flags_to_bits, keywords_to_text
from tests.store.conftest import message


def counts(store: AccountStore, name: str) -> tuple[int, int, int, int]:
    mb = store.mailbox(name)
    return mb.total, mb.unseen, mb.deleted, mb.size


async def test_set_flags_adds_removes_and_replaces_flags_and_keywords(
    store: AccountStore,
) -> None:
    d = await store.deliver("Inbox", message(), flags={Flag.DRAFT}, keywords={"Work"})
    r = await store.set_flags(d.mailbox_id, [d.uid], add=["\\seen", "$Junk"])
    assert [(c.uid, c.flags, c.keywords) for c in r.changed] == [
        (d.uid, frozenset({Flag.SEEN, Flag.DRAFT}), frozenset({"work", "$junk"}))
    ]
    assert r.changed[0].modseq > d.modseq
    r = await store.set_flags(d.mailbox_id, [d.uid], remove=["\\Draft", "work"])
    assert r.changed[0].flags == {Flag.SEEN} and r.changed[0].keywords == {"$junk"}
    r = await store.set_flags(d.mailbox_id, None, replace=["\\Flagged", "$NotJunk"])
    [m] = await store.messages(d.mailbox_id)
    assert m.flags == {Flag.FLAGGED} and m.keywords == {"$notjunk"}
    assert m.modseq == r.changed[0].modseq == store.mailbox("Inbox").highest_modseq


async def test_setting_unchanged_flags_changes_nothing(store: AccountStore) -> None:
    d = await store.deliver("Inbox", message(), flags={Flag.SEEN})
    r = await store.set_flags(d.mailbox_id, [d.uid], add=["\\Seen"])
    assert r.changed == () and (await store.messages(d.mailbox_id))[0].modseq == d.modseq


@pytest.mark.parametrize("bad", ["\\Recent", "\\Bogus", "has space", "(paren", ""])
async def test_invalid_flags_are_refused(store: AccountStore, bad: str) -> None:
    d = await store.deliver("Inbox", message())
    with pytest.raises(InvalidFlag):
        await store.set_flags(d.mailbox_id, [d.uid], add=[bad])


async def test_unchanged_since_reports_modified_messages(store: AccountStore) -> None:
    a = await store.deliver("Inbox", message(1))
    b = await store.deliver("Inbox", message(2))
    await store.set_flags(a.mailbox_id, [b.uid], add=["\\Flagged"])
    r = await store.set_flags(a.mailbox_id, None, add=["\\Seen"], unchanged_since=b.modseq)
    assert r.modified == (b.uid,)
    assert [c.uid for c in r.changed] == [a.uid]


async def test_counts_stay_exact_across_deliver_flag_expunge_copy_and_move(
    store: AccountStore,
) -> None:
    archive = store.mailbox("Archive")
    ds = await asyncio.gather(
        *(
            store.deliver("Inbox", message(i, body_size=10 * i), flags={Flag.SEEN} if i % 3 else ())
            for i in range(12)
        )
    )
    inbox = ds[0].mailbox_id
    await store.set_flags(inbox, [1, 2, 3, 4], add=["\\Deleted"])
    await store.set_flags(inbox, [2, 5], remove=["\\Seen"])
    await store.copy(inbox, [3, 6, 9], archive.id)
    await store.move(inbox, [4, 7], archive.id)
    await store.expunge(inbox)
    await store.set_flags(archive.id, None, add=["\\Deleted"])
    await store.expunge(archive.id, [1])
    assert check_account(store.path) == []
    msgs = await store.messages(inbox)
    assert counts(store, "Inbox") == (
        len(msgs),
        sum(Flag.SEEN not in m.flags for m in msgs),
        sum(Flag.DELETED in m.flags for m in msgs),
        sum(m.size for m in msgs),
    )
    usage = store.quota_usage()
    everything = [m for mb in store.list_mailboxes() for m in await store.messages(mb.id)]
    assert usage.usage == sum(m.size for m in everything) and usage.messages == len(everything)


async def test_expunge_leaves_tombstones_for_vanished_since(store: AccountStore) -> None:
    ds = [await store.deliver("Inbox", message(i)) for i in range(5)]
    mbid = ds[0].mailbox_id
    before = store.mailbox("Inbox").highest_modseq
    await store.set_flags(mbid, [2, 3, 4], add=["\\Deleted"])
    only = await store.expunge(mbid, [2, 4])  # UID EXPUNGE: only these, if \Deleted
    assert only.uids == (2, 4)
    assert store.vanished_since(mbid, before) == [2, 4]
    assert store.vanished_since(mbid, only.modseq) == []
    rest = await store.expunge(mbid)
    assert rest.uids == (3,)
    assert store.vanished_since(mbid, before) == [2, 3, 4]
    assert [m.uid for m in await store.messages(mbid)] == [1, 5]
    assert await store.expunge(mbid) == type(rest)(mbid, (), 0)


async def test_changes_since_returns_new_and_changed_messages(store: AccountStore) -> None:
    a = await store.deliver("Inbox", message(1))
    mark = store.mailbox("Inbox").highest_modseq
    await store.deliver("Inbox", message(2))
    await store.set_flags(a.mailbox_id, [a.uid], add=["\\Seen"])
    assert sorted(m.uid for m in await store.changes_since(a.mailbox_id, mark)) == [1, 2]
    assert await store.changes_since(a.mailbox_id, store.mailbox("Inbox").highest_modseq) == []


async def test_copy_assigns_new_uids_and_copies_content_with_file_hard_link(
    store: AccountStore,
) -> None:
    small = message(1)
    large = message(2, body_size=store.inline_threshold)
    await store.deliver("Inbox", small, flags={Flag.FLAGGED})
    await store.deliver("Inbox", large)
    inbox, archive = store.mailbox("Inbox"), store.mailbox("Archive")
    await store.deliver("Archive", message(3))
    c = await store.copy(inbox.id, [1, 2], archive.id)
    assert c.uidvalidity == archive.uidvalidity
    assert c.uids == ((1, 2), (2, 3))
    copies = await store.messages(archive.id, [2, 3])
    assert copies[0].flags == {Flag.FLAGGED}
    assert await store.read_message(copies[0]) == small
    assert await store.read_message(copies[1]) == large
    [orig] = await store.messages(inbox.id, [2])
    assert copies[1].file and orig.file and copies[1].file != orig.file
    assert (store.path / "msg" / copies[1].file).stat().st_nlink == 2
    # Expunging the original leaves the copy readable.
    await store.set_flags(inbox.id, [2], add=["\\Deleted"])
    await store.expunge(inbox.id)
    assert await store.read_message(copies[1]) == large
    with pytest.raises(MessageGone):
        await store.read_message(orig)
    assert check_account(store.path) == []


async def test_move_gives_new_uids_and_leaves_tombstones(store: AccountStore) -> None:
    for i in range(3):
        await store.deliver("Inbox", message(i))
    inbox, trash = store.mailbox("Inbox"), store.mailbox("Trash")
    usage = store.quota_usage().usage
    r = await store.move(inbox.id, [1, 3], trash.id)
    assert r.uids == ((1, 1), (3, 2))
    assert [m.uid for m in await store.messages(inbox.id)] == [2]
    assert [m.uid for m in await store.messages(trash.id)] == [1, 2]
    assert store.vanished_since(inbox.id, inbox.highest_modseq) == [1, 3]
    assert store.quota_usage().usage == usage  # a move adds nothing
    assert store.mailbox("Inbox").uidnext == 4  # UIDs are never reused
    assert check_account(store.path) == []


async def test_prefix_is_stored_before_content_inline_and_as_file(
    tmp_path: Path, runtime: StoreRuntime
) -> None:
    store = await AccountStore.open(
        tmp_path / "acc", name="acc", runtime=runtime, inline_threshold=1024
    )
    try:
        prefix = b"Received: from a\r\n\tby b;\r\n"
        for body in (b"x" * 100, b"y" * 5000):
            spool = tmp_path / "spool"
            spool.write_bytes(b"Subject: t\n\n" + body)
            for content in (spool.read_bytes(), spool):
                d = await store.deliver("Inbox", content, prefix=prefix)
                (msg,) = await store.messages(d.mailbox_id, [d.uid])
                data = await store.read_message(msg)
                assert data == prefix + b"Subject: t\r\n\r\n" + body
                assert msg.size == d.size == len(data)
    finally:
        await store.close()


@pytest.mark.parametrize("with_structure", [False, True])
async def test_reading_one_uid_gives_the_same_row_as_a_listing(
    store: AccountStore, with_structure: bool
) -> None:
    a = await store.deliver("Inbox", message(), flags={Flag.SEEN, Flag.DRAFT}, keywords={"Work"})
    b = await store.deliver("Inbox", message())
    listing = await store.messages(a.mailbox_id, with_structure=with_structure)
    for d in (a, b):
        [one] = await store.messages(d.mailbox_id, [d.uid], with_structure=with_structure)
        assert one == next(m for m in listing if m.uid == d.uid)
        assert bool(one.structure) == with_structure
    assert await store.messages(a.mailbox_id, [b.uid + 100]) == []
    pair = await store.messages(a.mailbox_id, [b.uid, a.uid], with_structure=with_structure)
    assert [m.uid for m in pair] == [a.uid, b.uid]


async def test_message_metadata_rows_agree_with_messages(store: AccountStore) -> None:
    for n in range(40):
        flags = {Flag.SEEN} if n % 2 else {Flag.FLAGGED, Flag.DRAFT}
        await store.deliver("Inbox", message(n, 10 * n), flags=flags, keywords={f"k{n % 3}"})
    mbid = store.mailbox("Inbox").id
    await store.set_flags(mbid, [5, 6, 7], add=["\\Deleted"])
    await store.expunge(mbid, [6])
    changed = await store.set_flags(mbid, [30], add=["$Junk"])
    by_uid = {m.uid: m for m in await store.messages(mbid)}
    dense, gappy, sparse = list(range(1, 41)), [2, 3, 5, 6, 7, 9], [1, 20, 40]
    for uids in (dense, gappy, sparse, [6], [7], []):
        rows = store.message_metadata(mbid, uids)
        expected = [by_uid[u] for u in uids if u in by_uid]
        assert [r[0] for r in rows] == [m.uid for m in expected]
        for (uid, bits, keywords, size, modseq, received), m in zip(rows, expected, strict=True):
            assert (uid, size, modseq) == (m.uid, m.size, m.modseq)
            assert (bits, keywords) == (flags_to_bits(m.flags), keywords_to_text(m.keywords))
            assert datetime.fromtimestamp(received / 1_000_000, UTC) == m.received
    since = changed.changed[0].modseq - 1
    assert [r[0] for r in store.message_metadata(mbid, dense, changed_since=since)] == [30]


async def test_uids_and_keywords_agree_with_messages(store: AccountStore) -> None:
    for n in range(12):
        kws = {f"k{n % 3}", "$Junk"} if n % 4 == 0 else ({f"k{n % 3}"} if n % 2 else set())
        await store.deliver("Inbox", message(n), keywords=kws)
    await store.deliver("Sent", message(99), keywords={"other"})
    mbid = store.mailbox("Inbox").id
    await store.set_flags(mbid, [3, 4], add=["\\Deleted"])
    await store.expunge(mbid, [3, 4])
    await store.set_flags(mbid, [12], add=["late"])
    msgs = await store.messages(mbid)
    uids, keywords = await store.uids_and_keywords(mbid)
    assert uids.typecode == UID_TYPECODE
    assert list(uids) == [m.uid for m in msgs] == [1, 2, *range(5, 13)]
    assert keywords == {k for m in msgs for k in m.keywords} == {"k0", "k1", "k2", "$junk", "late"}
    empty, none = await store.uids_and_keywords(store.mailbox("Trash").id)
    assert (list(empty), none) == ([], frozenset())
