"""Message commands over real sockets: APPEND, STORE, COPY/MOVE, EXPUNGE, CLOSE,
IDLE notifications, CONDSTORE/QRESYNC."""

import asyncio
import re
import socket

import imapclient  # type: ignore[import-untyped]

from tests.imap.clients.harness import (
    ADDRESS,
    HOST,
    PASSWORD,
    IMAPServer,
    Raw,
    client_context,
    imap_server,
    login,
    status,
)

__all__ = ["imap_server"]

MSG = b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


async def test_append_bare_lf_stored_size_and_appenduid(imap_server: IMAPServer) -> None:
    body = b"Subject: lf\n\nline one\nline two\n"

    def run() -> None:
        c = login(imap_server)
        typ, data = c.append("INBOX", "(\\Seen $Forwarded)", None, body)
        assert typ == "OK"
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
        assert m is not None and m.group(2) == b"1"
        typ, data = c.status("INBOX", "(MESSAGES SIZE UNSEEN)")
        assert data[0] == b"INBOX (MESSAGES 1 SIZE %d UNSEEN 0)" % (len(body) + body.count(b"\n"))
        c.logout()

    await asyncio.to_thread(run)
    store = await imap_server.store()
    mb = store.mailbox("INBOX")
    [msg] = await store.messages(mb.id)
    assert msg.size == len(body.replace(b"\n", b"\r\n"))
    assert await store.read_message(msg) == body.replace(b"\n", b"\r\n")
    assert msg.keywords == {"$forwarded"}
    assert not list((imap_server.services.data_dir / "tmp").iterdir())


async def test_append_errors(imap_server: IMAPServer) -> None:
    def run() -> None:
        r = Raw(imap_server)
        r.login()
        r.send(b"a APPEND Nope {5}\r\n")
        assert r.line().startswith(b"a NO [TRYCREATE]")
        r.send(b"b APPEND INBOX {999999999}\r\n")
        assert r.line().startswith(b"b NO [TOOBIG]")
        r.send(b"c APPEND Nope {5+}\r\nhello\r\n")
        assert r.line().startswith(b"c NO [TRYCREATE]")
        r.send(b"d APPEND INBOX (\\Seen) {5}\r\n")
        assert r.line().startswith(b"+ ")
        r.send(b"hello\r\n")
        assert r.line().startswith(b"d OK [APPENDUID ")
        r.send(b"e APPEND INBOX {3+}\r\nabc extra\r\n")
        assert r.line().startswith(b"e BAD")
        assert status(r.cmd("NOOP")) == b"OK"
        r.close()

    await asyncio.to_thread(run)
    assert not list((imap_server.services.data_dir / "tmp").iterdir())


async def test_disconnect_mid_literal_removes_spool(imap_server: IMAPServer) -> None:
    tmp = imap_server.services.data_dir / "tmp"

    def run() -> None:
        r = Raw(imap_server)
        r.login()
        r.send(b"a APPEND INBOX {100000}\r\n")
        assert r.line().startswith(b"+ ")
        assert len(list(tmp.iterdir())) == 1  # the spool file exists before "+"
        r.send(b"x" * 50000)
        r.sock.close()

    await asyncio.to_thread(run)
    # The session task ends once the server noticed the disconnect.
    await asyncio.wait_for(asyncio.gather(*imap_server.services.tasks), 10)
    assert not list(tmp.iterdir())
    store = await imap_server.store()
    assert store.mailbox("INBOX").total == 0


async def test_store_copy_move_expunge(imap_server: IMAPServer) -> None:
    store = await imap_server.store()
    for i in range(4):
        await store.deliver("Inbox", MSG + b"%d\r\n" % i)

    def run() -> None:
        r = Raw(imap_server)
        r.login()
        r.cmd("SELECT INBOX")
        lines = r.cmd("STORE 1:2 +FLAGS (\\Deleted $Label1)")
        assert lines[0] == b"* 1 FETCH (UID 1 FLAGS (\\Deleted $label1))\r\n"
        assert len(lines) == 3
        assert status(r.cmd("STORE 3 +FLAGS.SILENT (\\Seen)")) == b"OK"
        lines = r.cmd("UID STORE 3:4 FLAGS (\\Flagged)")
        assert lines[:2] == [
            b"* 3 FETCH (UID 3 FLAGS (\\Flagged))\r\n",
            b"* 4 FETCH (UID 4 FLAGS (\\Flagged))\r\n",
        ]
        assert status(r.cmd("STORE 9 +FLAGS (\\Seen)")) == b"BAD"
        lines = r.cmd("COPY 3:4 Archive")
        assert re.match(rb"t\d+ OK \[COPYUID \d+ 3:4 1:2\]", lines[-1])
        assert b"[TRYCREATE]" in r.cmd("COPY 1 Nope")[-1]
        lines = r.cmd("MOVE 4 Trash")
        assert re.match(rb"\* OK \[COPYUID \d+ 4 1\]", lines[0])
        assert lines[1] == b"* 4 EXPUNGE\r\n"
        lines = r.cmd("UID EXPUNGE 2")
        assert lines[0] == b"* 2 EXPUNGE\r\n"
        lines = r.cmd("EXPUNGE")
        assert lines[0] == b"* 1 EXPUNGE\r\n" and len(lines) == 2
        lines = r.cmd("STATUS Archive (MESSAGES)")
        assert lines[0] == b"* STATUS Archive (MESSAGES 2)\r\n"
        r.cmd("STORE 1 +FLAGS (\\Deleted)")
        assert status(r.cmd("CLOSE")) == b"OK"
        assert status(r.cmd("STATUS INBOX (MESSAGES)")) == b"OK"
        r.close()

    await asyncio.to_thread(run)
    assert store.mailbox("INBOX").total == 0
    assert store.mailbox("Trash").total == 1


async def test_idle_sees_append_from_other_session_and_delivery(imap_server: IMAPServer) -> None:
    store = await imap_server.store()
    idling, first = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def idler() -> list[bytes]:
        r = Raw(imap_server)
        r.login()
        r.cmd("SELECT INBOX")
        r.send(b"i IDLE\r\n")
        assert r.line().startswith(b"+ ")
        loop.call_soon_threadsafe(idling.set)
        got = [r.line(), r.line()]  # EXISTS, RECENT (IMAP4rev1)
        loop.call_soon_threadsafe(first.set)
        got += [r.line(), r.line()]
        r.send(b"DONE\r\n")
        got += r.until_tagged(b"i")
        r.close()
        return got

    task = asyncio.ensure_future(asyncio.to_thread(idler))
    await idling.wait()

    def other() -> None:
        c = login(imap_server)
        c.append("INBOX", None, None, MSG)
        c.logout()

    await asyncio.to_thread(other)
    await first.wait()
    await store.deliver("Inbox", MSG)
    got = await asyncio.wait_for(task, 10)
    assert got[:4] == [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n", b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n"]
    assert got[-1].startswith(b"i OK")


async def test_flag_changes_and_expunges_reach_other_sessions(imap_server: IMAPServer) -> None:
    store = await imap_server.store()
    for _ in range(3):
        await store.deliver("Inbox", MSG)

    def run() -> None:
        a, b = Raw(imap_server), Raw(imap_server)
        a.login()
        b.login()
        a.cmd("SELECT INBOX")
        b.cmd("SELECT INBOX")
        b.cmd("STORE 2 +FLAGS (\\Deleted)")
        b.cmd("EXPUNGE")
        lines = a.cmd("UID STORE 1 +FLAGS (\\Seen)")
        # Pending updates come before the tagged reply.
        assert b"* 2 FETCH (UID 2 FLAGS (\\Deleted))\r\n" in lines
        assert b"* 2 EXPUNGE\r\n" in lines
        lines = a.cmd("NOOP")
        assert lines == [lines[-1]]
        a.close()
        b.close()

    await asyncio.to_thread(run)


async def test_expunge_held_back_during_sequence_store(imap_server: IMAPServer) -> None:
    store = await imap_server.store()
    for _ in range(2):
        await store.deliver("Inbox", MSG)

    def run() -> None:
        a, b = Raw(imap_server), Raw(imap_server)
        a.login()
        b.login()
        a.cmd("SELECT INBOX")
        b.cmd("SELECT INBOX")
        b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        b.cmd("EXPUNGE")
        lines = a.cmd("STORE 2 +FLAGS (\\Seen)")
        assert not any(b"EXPUNGE" in x for x in lines)
        assert b"* 1 EXPUNGE\r\n" in a.cmd("NOOP")
        a.close()
        b.close()

    await asyncio.to_thread(run)


async def test_condstore_and_qresync(imap_server: IMAPServer) -> None:
    store = await imap_server.store()
    for _ in range(3):
        await store.deliver("Inbox", MSG)

    def run() -> None:
        r = Raw(imap_server)
        r.login()
        lines = r.cmd("SELECT INBOX (CONDSTORE)")
        m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", b"".join(lines))
        assert m is not None
        modseq = int(m.group(1))
        validity = re.search(rb"\[UIDVALIDITY (\d+)\]", b"".join(lines))
        assert validity is not None
        lines = r.cmd(f"STORE 1 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Seen)")
        assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \((\d+)\)\)", lines[0])
        lines = r.cmd(f"STORE 1 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Flagged)")
        assert b"[MODIFIED 1]" in lines[-1]
        r.cmd("STORE 3 +FLAGS (\\Deleted)")
        r.cmd("EXPUNGE")
        r.close()

        q = Raw(imap_server)
        q.login()
        assert q.cmd("ENABLE QRESYNC")[0] == b"* ENABLED QRESYNC\r\n"
        lines = q.cmd(f"SELECT INBOX (QRESYNC ({int(validity.group(1))} {modseq} 1:3))")
        text = b"".join(lines)
        assert b"* VANISHED (EARLIER) 3\r\n" in text
        assert re.search(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", text)
        q.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
        lines = q.cmd("EXPUNGE")
        assert lines[0] == b"* VANISHED 2\r\n" and b"[HIGHESTMODSEQ" in lines[-1]
        assert b"* OK [CLOSED]" in q.cmd("SELECT INBOX")[0]
        q.close()

    await asyncio.to_thread(run)


async def test_imapclient_flags_copy_move(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = imapclient.IMAPClient(HOST, port=imap_server.tls_port, ssl_context=client_context())
        c.login(ADDRESS, PASSWORD)
        c.append("INBOX", MSG)
        c.append("INBOX", MSG, flags=(imapclient.SEEN,))
        c.select_folder("INBOX")
        assert c.add_flags([1], [imapclient.FLAGGED]) == {1: (b"\\Flagged",)}
        assert c.remove_flags([1], [imapclient.FLAGGED]) == {1: ()}
        c.copy([1, 2], "Archive")
        c.move([2], "Trash")
        c.delete_messages([1])
        c.expunge()
        assert c.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 2
        assert c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0
        c.logout()

    await asyncio.to_thread(run)


async def test_logout_closes(imap_server: IMAPServer) -> None:
    def run() -> None:
        s = socket.create_connection((HOST, imap_server.port))
        f = s.makefile("rwb")
        f.readline()
        f.write(b"a LOGOUT\r\n")
        f.flush()
        assert f.readline().startswith(b"* BYE")
        assert f.readline().startswith(b"a OK")
        assert f.readline() == b""
        s.close()

    await asyncio.to_thread(run)
