"""check_account finds what recomputation disagrees with; repair removes orphans."""

from pathlib import Path

import apsw
import pytest

from app.store import (
    AccountInUse,
    AccountStore,
    ProblemKind,
    StoreRuntime,
    check_account,
    repair_account,
)
from tests.store.conftest import message


async def filled(runtime: StoreRuntime, path: Path) -> None:
    store = await AccountStore.open(path, name="c", runtime=runtime)
    await store.deliver("Inbox", message(1))
    await store.deliver("Inbox", message(2, body_size=store.inline_threshold))
    await store.close()


def kinds(path: Path) -> list[ProblemKind]:
    return [p.kind for p in check_account(path)]


def sql(path: Path, statement: str) -> list[tuple[object, ...]]:
    conn = apsw.Connection(str(path / "index.db"))
    try:
        return list(conn.execute(statement))
    finally:
        conn.close()


def stored_file(path: Path) -> Path:
    [(name,)] = sql(path, "SELECT file FROM message WHERE file IS NOT NULL")
    return path / "msg" / str(name)


async def test_a_clean_account_has_no_problems(runtime: StoreRuntime, tmp_path: Path) -> None:
    await filled(runtime, tmp_path / "c")
    assert check_account(tmp_path / "c") == []


async def test_orphan_file_is_found_and_repair_removes_it(
    runtime: StoreRuntime, tmp_path: Path
) -> None:
    path = tmp_path / "c"
    await filled(runtime, path)
    (path / "msg" / "ab").mkdir(exist_ok=True)
    (path / "msg" / "ab" / "leftover").write_bytes(b"partial")
    problems = check_account(path)
    assert [(p.kind, p.subject) for p in problems] == [(ProblemKind.ORPHAN, "ab/leftover")]
    assert [p.kind for p in repair_account(path)] == [ProblemKind.ORPHAN]
    assert check_account(path) == []


async def test_wrong_file_size_is_found(runtime: StoreRuntime, tmp_path: Path) -> None:
    path = tmp_path / "c"
    await filled(runtime, path)
    with open(stored_file(path), "ab") as f:
        f.write(b"extra")
    assert kinds(path) == [ProblemKind.WRONG_SIZE]


async def test_missing_file_is_found(runtime: StoreRuntime, tmp_path: Path) -> None:
    path = tmp_path / "c"
    await filled(runtime, path)
    stored_file(path).unlink()
    assert kinds(path) == [ProblemKind.MISSING_FILE]


async def test_count_mismatch_is_found_and_repair_recomputes(
    runtime: StoreRuntime, tmp_path: Path
) -> None:
    path = tmp_path / "c"
    await filled(runtime, path)
    sql(path, "UPDATE mailbox SET unseen = unseen + 1 WHERE name = 'Inbox'")
    sql(path, "UPDATE account SET usage = usage - 1")
    assert kinds(path) == [ProblemKind.COUNT_MISMATCH, ProblemKind.QUOTA_MISMATCH]
    repair_account(path)
    assert check_account(path) == []


async def test_uid_and_modseq_bounds_are_checked(runtime: StoreRuntime, tmp_path: Path) -> None:
    path = tmp_path / "c"
    await filled(runtime, path)
    sql(path, "UPDATE mailbox SET uidnext = 2 WHERE name = 'Inbox'")
    sql(path, "UPDATE message SET modseq = 1000 WHERE uid = 1")
    assert sorted(kinds(path)) == sorted(
        [ProblemKind.UID_NOT_BELOW_UIDNEXT, ProblemKind.MODSEQ_TOO_HIGH]
    )


async def test_repair_refuses_while_the_account_is_open(store: AccountStore) -> None:
    with pytest.raises(AccountInUse):
        repair_account(store.path)
