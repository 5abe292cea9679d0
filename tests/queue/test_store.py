"""The queue store: inline and file content, group commit, reopening, file cleanup."""

import asyncio
from pathlib import Path

import pytest

from app.queue.store import Filter, NewMessage, QueueError, QueueStore, Result

NOW = 1_750_000_000.0


def msg(content: bytes | Path = b"Subject: x\r\n\r\nhi\r\n", **kw: object) -> NewMessage:
    args: dict[str, object] = {
        "account": "you",
        "sender": "you@example.org",
        "recipients": ("a@remote.example", "b@Remote.Example"),
        "content": content,
    }
    args.update(kw)
    return NewMessage(**args)  # type: ignore[arg-type]


def files(store: QueueStore) -> list[Path]:
    return [p for p in store.files.root.rglob("*") if p.is_file()]


async def test_small_message_inline_one_row_per_recipient(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path)
    try:
        ids = await store.enqueue(msg(prefix=b"X-Prefix: 1\r\n", smtputf8=True), NOW)
        entries = await store.entries()
        assert [e.id for e in entries] == ids and len(ids) == 2
        assert [e.domain for e in entries] == ["remote.example", "remote.example"]
        e = entries[0]
        assert (e.account, e.sender, e.attempts, e.next_attempt) == (
            "you",
            "you@example.org",
            0,
            NOW,
        )
        assert e.smtputf8 and not e.eight_bit and e.file is None
        assert await store.content(e) == b"X-Prefix: 1\r\nSubject: x\r\n\r\nhi\r\n"
        assert files(store) == []
    finally:
        await store.close()


async def test_large_message_in_file_removed_with_last_recipient(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path)
    try:
        big = b"Subject: big\r\n\r\n" + b"\xc3\xa9" * 100_000 + b"\n" * 10_000
        spool = tmp_path / "spool"
        spool.write_bytes(big)
        ids = await store.enqueue(msg(spool, prefix=b"X-P: 1\r\n"), NOW)
        (f,) = files(store)
        e = (await store.entries())[0]
        assert e.file is not None and e.eight_bit
        data = f.read_bytes()
        assert data.startswith(b"X-P: 1\r\nSubject: big") and b"\n\n" not in data  # CRLF fixed
        assert e.size == len(data)
        await store.record([Result(ids[0], delivered=True)])
        assert files(store) == [f]
        await store.remove([ids[1]])
        assert files(store) == []
        assert await store.entries(Filter(include_failed=True)) == []
    finally:
        await store.close()


async def test_concurrent_enqueues_are_group_committed(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path)
    try:
        before = store.commits
        ids = await asyncio.gather(*(store.enqueue(msg(), NOW) for _ in range(200)))
        assert len({i for pair in ids for i in pair}) == 400
        assert store.commits - before < 200
    finally:
        await store.close()


async def test_queue_survives_reopen(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path)
    ids = await store.enqueue(msg(hold=True, transport="relay", requiretls=True), NOW)
    await store.close()
    store = await QueueStore.open(tmp_path)
    try:
        entries = await store.entries()
        assert [e.id for e in entries] == ids
        assert all(e.hold and e.transport == "relay" and e.requiretls for e in entries)
    finally:
        await store.close()


async def test_orphan_files_removed(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path)
    try:
        kept = tmp_path / "kept"
        kept.write_bytes(b"Subject: k\r\n\r\n" + b"k" * 200_000)
        await store.enqueue(msg(kept), NOW)
        name = store.files.write_bytes(b"orphan")  # a crash before the commit
        assert await store.remove_orphans() == 1
        assert not store.files.path(name).exists()
        assert len(files(store)) == 1
    finally:
        await store.close()


async def test_filters(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path)
    try:
        a = await store.enqueue(msg(recipients=("x@one.example",)), NOW)
        b = await store.enqueue(msg(account="other", sender="o@example.org"), NOW)
        assert [e.id for e in await store.entries(Filter(account="other"))] == b
        assert [e.id for e in await store.entries(Filter(sender="O@EXAMPLE"))] == b
        assert [e.id for e in await store.entries(Filter(recipient="one.ex"))] == a
        assert [e.id for e in await store.entries(Filter(ids=(b[1],)))] == [b[1]]
    finally:
        await store.close()


async def test_bad_recipient_refused(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path)
    try:
        with pytest.raises(QueueError):
            await store.enqueue(msg(recipients=("not an address",)), NOW)
        with pytest.raises(QueueError):
            await store.enqueue(msg(recipients=()), NOW)
    finally:
        await store.close()
