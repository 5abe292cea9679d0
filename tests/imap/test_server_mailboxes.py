"""Mailbox commands over real sockets: LIST (UTF-7, extended), CREATE/RENAME/DELETE,
SUBSCRIBE, STATUS, NAMESPACE, SELECT/EXAMINE and QUOTA."""

import asyncio

import imapclient  # type: ignore[import-untyped]
import pytest

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


async def test_list_utf7_names_and_special_chars(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = login(imap_server)
        for name in ["Entwürfe", "a&b", "#news", "Tëst/Child"]:
            wire = imapclient.imap_utf7.encode(name).decode()
            assert c.create(f'"{wire}"')[0] == "OK", name
        typ, data = c.list()
        assert typ == "OK"
        text = b"\n".join(d for d in data if isinstance(d, bytes))
        assert b'"/" "Entw&APw-rfe"' in text or b'"/" Entw&APw-rfe' in text
        assert b"a&-b" in text and b"#news" in text
        assert b'(\\HasChildren) "/" T&AOs-st' in text
        assert b'(\\HasNoChildren \\Sent) "/" Sent' in text
        assert text.startswith(b'(\\HasNoChildren) "/" INBOX')
        typ, data = c.list('""', "%")
        assert not any(b"st/Child" in d for d in data if isinstance(d, bytes))
        typ, data = c.list('""', '"T&AOs-st/*"')
        assert len(data) == 1 and isinstance(data[0], bytes) and b"st/Child" in data[0]
        # Names with wildcard characters, & and #: create, list, rename, select, delete.
        for name in ['"a*b"', '"50%"']:
            assert c.create(name)[0] == "OK", name
        typ, data = c.list('""', '"a*b"')
        assert typ == "OK" and any(
            b'"a*b"' in d or b" a*b" in d for d in data if isinstance(d, bytes)
        )
        assert c.rename('"50%"', '"100% &- #1"')[0] == "OK"  # & is &- in UTF-7
        typ, data = c.list('""', "*")
        text = b"\n".join(d for d in data if isinstance(d, bytes))
        assert b"100% &- #1" in text and b"50%" not in text
        assert c.select('"100% &- #1"')[0] == "OK"
        c.close()
        assert c.delete('"100% &- #1"')[0] == "OK" and c.delete('"a*b"')[0] == "OK"
        c.logout()

    await asyncio.to_thread(run)


async def test_imapclient_utf8_and_folder_operations(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = imapclient.IMAPClient(HOST, port=imap_server.tls_port, ssl_context=client_context())
        c.login(ADDRESS, PASSWORD)
        c.create_folder("Répertoire")
        assert c.folder_exists("Répertoire")
        c.rename_folder("Répertoire", "Dossier/Répertoire")
        names = [f[2] for f in c.list_folders()]
        assert "Dossier/Répertoire" in names and "Répertoire" not in names
        c.delete_folder("Dossier/Répertoire")
        assert not c.folder_exists("Dossier/Répertoire")
        c.create_folder("Ünïcode")
        c.logout()
        r = Raw(imap_server)
        r.login()
        assert r.cmd('LIST "" "&ANw-*"')[0] == b'* LIST (\\HasNoChildren) "/" &ANw-n&AO8-code\r\n'
        assert r.cmd("ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT\r\n"
        lines = r.cmd('LIST "" "Ü*"'.encode())
        assert lines[0] == '* LIST (\\HasNoChildren) "/" "Ünïcode"\r\n'.encode()
        assert status(r.cmd('CREATE "Ça/va"'.encode())) == b"OK"
        assert status(r.cmd('SELECT "Ünïcode"'.encode())) == b"OK"
        r.close()

    await asyncio.to_thread(run)


async def test_create_errors_and_special_use(imap_server: IMAPServer) -> None:
    def run() -> None:
        r = Raw(imap_server)
        r.login()
        assert b"[ALREADYEXISTS]" in r.cmd("CREATE Sent")[-1]
        assert b"[ALREADYEXISTS]" in r.cmd("CREATE inbox")[-1]
        assert status(r.cmd("CREATE Spam (USE (\\Junk))")) == b"OK"
        assert b"[USEATTR]" in r.cmd("CREATE Other (USE (\\Bogus))")[-1]
        lines = r.cmd('LIST (SPECIAL-USE) "" "*"')
        names = [x.split()[-1] for x in lines[:-1]]
        assert b"Spam" in names and b"INBOX" not in names
        assert b"[NONEXISTENT]" in r.cmd("DELETE Nope")[-1]
        assert status(r.cmd("CREATE Parent/Kid/")) == b"OK"
        assert b"[HASCHILDREN]" in r.cmd("DELETE Parent")[-1]
        assert status(r.cmd("DELETE INBOX")) == b"NO"
        assert status(r.cmd("RENAME Parent Renamed")) == b"OK"
        assert b"Renamed/Kid" in b"".join(r.cmd('LIST "" "Renamed/*"'))
        assert b"[ALREADYEXISTS]" in r.cmd("RENAME Renamed Sent")[-1]
        assert b"[NONEXISTENT]" in r.cmd("RENAME Nope Other")[-1]
        assert status(r.cmd("ENABLE IMAP4rev2")) == b"OK"
        lines = r.cmd("RENAME Renamed Again")
        assert lines[0] == b'* LIST () "/" Again ("OLDNAME" (Renamed))\r\n'
        r.close()

    await asyncio.to_thread(run)


async def test_list_extended_subscribed_recursive_and_status(imap_server: IMAPServer) -> None:
    def run() -> None:
        r = Raw(imap_server)
        r.login()
        r.cmd("CREATE Lists/Work")
        r.cmd("UNSUBSCRIBE Lists")
        r.cmd("SUBSCRIBE Gone")
        lines = r.cmd('LIST (SUBSCRIBED) "" "*"')
        text = b"".join(lines)
        assert b'(\\Subscribed \\NonExistent) "/" Gone' in text
        assert b"Lists/Work" in text and b'"/" Lists\r\n' not in text
        lines = r.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
        text = b"".join(lines)
        assert b'"/" Lists ("CHILDINFO" ("SUBSCRIBED"))' in text
        assert status(r.cmd('LIST (RECURSIVEMATCH) "" "%"')) == b"BAD"
        lines = r.cmd('LIST "" "INBOX" RETURN (STATUS (MESSAGES UIDNEXT SIZE))')
        assert lines[1] == b"* STATUS INBOX (MESSAGES 0 UIDNEXT 1 SIZE 0)\r\n"
        lines = r.cmd('LIST "" "" ')
        lines = r.cmd('LIST "" ""')
        assert lines[0] == b'* LIST (\\Noselect) "/" ""\r\n'
        lines = r.cmd('LSUB "" "*"')
        assert b'* LSUB (\\Noselect) "/" Gone\r\n' in lines
        assert r.cmd("NAMESPACE")[0] == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
        r.close()

    await asyncio.to_thread(run)


async def test_status_select_examine(imap_server: IMAPServer) -> None:
    store = await imap_server.store()
    await store.deliver("Inbox", b"Subject: one\r\n\r\nbody\r\n")
    await store.deliver("Inbox", b"Subject: two\r\n\r\nbody\r\n", flags=[])

    def run() -> None:
        r = Raw(imap_server)
        r.login()
        lines = r.cmd(
            "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT "
            "HIGHESTMODSEQ APPENDLIMIT)"
        )
        assert lines[0].startswith(b"* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY ")
        assert b"UNSEEN 2 DELETED 0 SIZE " in lines[0] and b"APPENDLIMIT 104857600" in lines[0]
        lines = r.cmd("SELECT INBOX")
        text = b"".join(lines)
        assert b"* 2 EXISTS\r\n" in text and b"* 0 RECENT\r\n" in text
        assert b"[UIDNEXT 3]" in text and b"[HIGHESTMODSEQ " in text
        assert b"[PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)]" in text
        assert b"OK [READ-WRITE]" in lines[-1]
        lines = r.cmd("EXAMINE INBOX")
        assert b"OK [READ-ONLY]" in lines[-1]
        assert b"[PERMANENTFLAGS ()]" in b"".join(lines)
        assert b"[READ-ONLY]" in r.cmd("STORE 1 +FLAGS (\\Seen)")[-1]
        assert b"[NONEXISTENT]" in r.cmd("SELECT Nope")[-1]
        assert status(r.cmd("NOOP")) == b"OK"
        assert status(r.cmd("FETCH 1 FLAGS")) == b"BAD"  # the failed SELECT unselected
        r.cmd("ENABLE IMAP4rev2")
        lines = r.cmd("SELECT INBOX")
        text = b"".join(lines)
        assert b"RECENT" not in text and b'* LIST () "/" INBOX\r\n' in text
        r.close()

    await asyncio.to_thread(run)


async def test_select_lists_uids_and_keywords_without_loading_messages(
    imap_server: IMAPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SELECT needs UIDs and keywords only: a MessageInfo per message made eight
    # concurrent SELECTs of 5,000 messages allocate ~25 MiB of small objects.
    store = await imap_server.store()
    await store.deliver("Inbox", b"Subject: one\r\n\r\nx\r\n", keywords=["work"])
    await store.deliver("Inbox", b"Subject: two\r\n\r\nx\r\n", keywords=["$Junk", "work"])
    await store.deliver("Inbox", b"Subject: three\r\n\r\nx\r\n")

    async def no_messages(*args: object, **kwargs: object) -> None:
        raise AssertionError("SELECT loaded whole messages")

    monkeypatch.setattr(type(store), "messages", no_messages)

    def run() -> None:
        r = Raw(imap_server)
        r.login()
        lines = r.cmd("SELECT INBOX")
        text = b"".join(lines)
        assert b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $junk work)" in text
        assert (
            b"[PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $junk work \\*)]"
            in text
        )
        assert b"* 3 EXISTS\r\n" in text and b"OK [READ-WRITE]" in lines[-1]
        assert b"* SEARCH 1 2\r\n" in r.cmd("SEARCH KEYWORD work")
        assert b"* 3 FETCH (UID 3)\r\n" in r.cmd("FETCH 3 UID")
        r.close()

    await asyncio.to_thread(run)


async def test_recent_for_rev1(imap_server: IMAPServer) -> None:
    store = await imap_server.store()

    def first() -> None:
        r = Raw(imap_server)
        r.login()
        assert b"* 0 RECENT\r\n" in r.cmd("SELECT INBOX")
        r.close()

    await asyncio.to_thread(first)
    await store.deliver("Inbox", b"Subject: new\r\n\r\nx\r\n")

    def second() -> None:
        r = Raw(imap_server)
        r.login()
        assert b"* 1 RECENT\r\n" in r.cmd("SELECT INBOX")
        # RFC 3501 2.3.2: FETCH FLAGS shows it, by the row path and the general one.
        assert b"* 1 FETCH (FLAGS (\\Recent))\r\n" in r.cmd("FETCH 1 FLAGS")
        assert b"* 1 FETCH (FLAGS (\\Recent) UID 1 ENVELOPE (" in b"".join(
            r.cmd("FETCH 1 (FLAGS UID ENVELOPE)")
        )
        # RFC 3501 6.4.4: RECENT, NEW (recent and unseen) and OLD.
        assert b"* SEARCH 1\r\n" in r.cmd("SEARCH RECENT")
        assert b"* SEARCH 1\r\n" in r.cmd("SEARCH NEW")
        assert b"* SEARCH\r\n" in r.cmd("SEARCH OLD")
        r.cmd("STORE 1 +FLAGS.SILENT (\\Seen)")
        assert b"* SEARCH\r\n" in r.cmd("SEARCH NEW")
        assert b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n" in r.cmd("FETCH 1 FLAGS")
        r2 = Raw(imap_server)
        r2.login()
        assert b"* 0 RECENT\r\n" in r2.cmd("SELECT INBOX")
        assert b"* 1 FETCH (FLAGS (\\Seen))\r\n" in r2.cmd("FETCH 1 FLAGS")
        assert b"* SEARCH\r\n" in r2.cmd("SEARCH RECENT")
        assert b"* SEARCH 1\r\n" in r2.cmd("SEARCH OLD")
        # IMAP4rev2 has no \\Recent.
        r.cmd("ENABLE IMAP4rev2")
        assert b"* 1 FETCH (FLAGS (\\Seen))\r\n" in r.cmd("FETCH 1 FLAGS")
        r.close()
        r2.close()

    await asyncio.to_thread(second)


async def test_quota_and_overquota_append(imap_server: IMAPServer) -> None:
    store = await imap_server.store()
    store.set_quota(10 * 1024)

    def run() -> None:
        c = login(imap_server)
        typ, data = c.getquotaroot("INBOX")
        assert typ == "OK"
        assert data[0] == [b'INBOX ""'] and data[1] == [b'"" (STORAGE 0 10)']
        assert c.getquota('""')[1] == [b'"" (STORAGE 0 10)']
        typ, data = c.append("INBOX", None, None, b"Subject: x\r\n\r\n" + b"x" * 20000)
        assert typ == "NO" and b"[OVERQUOTA]" in data[0]
        typ, data = c.append("INBOX", None, None, b"Subject: x\r\n\r\nsmall\r\n")
        assert typ == "OK"
        assert c.getquota('""')[1] == [b'"" (STORAGE 1 10)']
        typ, data = c._simple_command("SETQUOTA", '""', "(STORAGE 100)")
        assert typ == "NO"
        c.logout()

    await asyncio.to_thread(run)
