"""Mailbox create, delete, rename and subscriptions."""

import pytest

from app.store import (
    AccountStore,
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotAllowed,
    MailboxNotFound,
    check_account,
)
from tests.store.conftest import message


async def test_uidvalidity_is_not_reused_after_delete_and_recreate(store: AccountStore) -> None:
    first = await store.create_mailbox("Lists")
    await store.delete_mailbox("Lists")
    second = await store.create_mailbox("Lists")
    assert second.uidvalidity > first.uidvalidity
    assert second.uidvalidity not in {
        mb.uidvalidity for mb in store.list_mailboxes() if mb.name != "Lists"
    }


async def test_create_makes_missing_parents(store: AccountStore) -> None:
    await store.create_mailbox("a/b/c")
    names = {mb.name for mb in store.list_mailboxes()}
    assert {"a", "a/b", "a/b/c"} <= names


async def test_create_existing_mailbox_raises(store: AccountStore) -> None:
    with pytest.raises(MailboxExists):
        await store.create_mailbox("INBOX")


@pytest.mark.parametrize("name", ["", "a//b", "/a", "a/", "x\x01"])
async def test_invalid_mailbox_names_are_refused(store: AccountStore, name: str) -> None:
    with pytest.raises(InvalidMailboxName):
        await store.create_mailbox(name)


async def test_unicode_names_are_stored_nfc(store: AccountStore) -> None:
    await store.create_mailbox("Cafe\u0301")
    assert store.mailbox("Caf\u00e9").name == "Caf\u00e9"


async def test_rename_moves_children_and_keeps_uidvalidity_and_messages(
    store: AccountStore,
) -> None:
    parent = await store.create_mailbox("Work")
    child = await store.create_mailbox("Work/Projects")
    await store.create_mailbox("Workshop")  # shares a prefix but is not a child
    await store.deliver("Work/Projects", message(1))
    await store.rename_mailbox("Work", "Old/Work")
    names = {mb.name for mb in store.list_mailboxes()}
    assert {"Old", "Old/Work", "Old/Work/Projects", "Workshop"} <= names
    assert "Work" not in names and "Work/Projects" not in names
    moved = store.mailbox("Old/Work/Projects")
    assert moved.id == child.id and moved.uidvalidity == child.uidvalidity
    assert store.mailbox("Old/Work").uidvalidity == parent.uidvalidity
    assert len(await store.messages(moved.id)) == 1
    assert "Old/Work/Projects" in store.subscriptions()
    assert check_account(store.path) == []


async def test_rename_to_existing_name_or_own_child_fails(store: AccountStore) -> None:
    await store.create_mailbox("A/B")
    with pytest.raises(MailboxExists):
        await store.rename_mailbox("A", "Sent")
    with pytest.raises(MailboxNotAllowed):
        await store.rename_mailbox("A", "A/B/C")
    with pytest.raises(MailboxNotFound):
        await store.rename_mailbox("Nope", "Other")


async def test_renaming_inbox_moves_its_messages_to_a_new_mailbox(store: AccountStore) -> None:
    for i in range(3):
        await store.deliver("Inbox", message(i))
    await store.rename_mailbox("INBOX", "Old mail")
    assert store.mailbox("Inbox").total == 0
    old = store.mailbox("Old mail")
    assert [m.uid for m in await store.messages(old.id)] == [1, 2, 3]
    assert check_account(store.path) == []


async def test_delete_refuses_inbox_and_mailboxes_with_children(store: AccountStore) -> None:
    await store.create_mailbox("P/C")
    with pytest.raises(MailboxNotAllowed):
        await store.delete_mailbox("inbox")
    with pytest.raises(MailboxHasChildren):
        await store.delete_mailbox("P")
    with pytest.raises(MailboxNotFound):
        await store.delete_mailbox("Nope")


async def test_delete_removes_messages_files_and_quota_usage(store: AccountStore) -> None:
    mb = await store.create_mailbox("Tmp")
    await store.deliver("Tmp", message(1))
    await store.deliver("Tmp", message(2, body_size=store.inline_threshold))
    keep = await store.deliver("Inbox", message(3))
    await store.delete_mailbox("Tmp")
    with pytest.raises(MailboxNotFound):
        store.mailbox_by_id(mb.id)
    assert store.quota_usage().usage == keep.size
    assert not [p for p in (store.path / "msg").rglob("*") if p.is_file()]
    assert check_account(store.path) == []


async def test_subscriptions_are_independent_of_mailbox_existence(store: AccountStore) -> None:
    await store.set_subscribed("Not/There", True)
    assert "Not/There" in store.subscriptions()
    await store.create_mailbox("Gone", subscribe=True)
    await store.delete_mailbox("Gone")
    assert "Gone" in store.subscriptions()  # RFC 9051 6.3.9: not removed on delete
    await store.set_subscribed("Gone", False)
    await store.set_subscribed("Sent", False)
    subs = store.subscriptions()
    assert "Gone" not in subs and "Sent" not in subs
    await store.create_mailbox("Quiet", subscribe=False)
    assert "Quiet" not in store.subscriptions()
