"""OpenSSL loads with the first TLS use: asyncio imported without ssl still does TLS.

Each test runs in a fresh interpreter, since the point is what a process that has
not imported asyncio or ssl yet does.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from app.tls.certs import generate_self_signed


def run_child(code: str, *args: str) -> dict[str, object]:
    p = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    result: dict[str, object] = json.loads(p.stdout.splitlines()[-1])
    return result


def test_asyncio_without_ssl_gets_it_on_first_import_and_does_tls(tmp_path: Path) -> None:
    generate_self_signed(["mail.test.example"], tmp_path / "c.pem", tmp_path / "k.pem")
    out = run_child(
        """
        import json, sys
        from app.tls.lazyssl import deferred, import_asyncio_without_ssl
        did = import_asyncio_without_ssl()
        import asyncio
        import asyncio.base_events, asyncio.selector_events, asyncio.sslproto
        before = {
            "ssl": "ssl" in sys.modules,
            "_hashlib": "_hashlib" in sys.modules,
            "deferred": deferred(),
            "base_events": asyncio.base_events.ssl is None,
        }
        import ssl  # anything importing ssl attaches it to asyncio
        attached = all(m.ssl is ssl for m in (
            asyncio.base_events, asyncio.selector_events, asyncio.sslproto))

        async def main():
            server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_ctx.load_cert_chain(sys.argv[1], sys.argv[2])

            async def echo(r, w):
                w.write(await r.readline())
                await w.drain()
                w.close()

            server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
            port = server.sockets[0].getsockname()[1]
            client_ctx = ssl.create_default_context(cafile=sys.argv[1])
            r, w = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="mail.test.example")
            w.write(b"over tls\\n")
            line = await r.readline()
            version = w.get_extra_info("ssl_object").version()
            # STARTTLS: a plain connection upgraded with loop.start_tls on both ends
            async def upgrade(r, w):
                await r.readline()
                w.write(b"go\\n")
                await w.drain()
                await w.start_tls(server_ctx)
                await echo(r, w)

            plain = await asyncio.start_server(upgrade, "127.0.0.1", 0)
            r2, w2 = await asyncio.open_connection("127.0.0.1", plain.sockets[0].getsockname()[1])
            w2.write(b"starttls\\n")
            assert await r2.readline() == b"go\\n"
            await w2.start_tls(client_ctx, server_hostname="mail.test.example")
            w2.write(b"after starttls\\n")
            line += await r2.readline()
            w.close()
            w2.close()
            server.close()
            plain.close()
            return line.decode(), version

        line, version = asyncio.run(main())
        print(json.dumps({"did": did, "before": before, "attached": attached,
                          "deferred_after": deferred(), "line": line, "version": version}))
        """,
        str(tmp_path / "c.pem"),
        str(tmp_path / "k.pem"),
    )
    assert out["did"] is True
    assert out["before"] == {"ssl": False, "_hashlib": False, "deferred": True, "base_events": True}
    assert out["attached"] is True and out["deferred_after"] is False
    assert out["line"] == "over tls\nafter starttls\n" and out["version"] == "TLSv1.3"


def test_nothing_is_deferred_once_asyncio_is_imported() -> None:
    out = run_child(
        """
        import asyncio, json, sys
        from app.tls.lazyssl import deferred, import_asyncio_without_ssl
        print(json.dumps({"did": import_asyncio_without_ssl(), "deferred": deferred(),
                          "ssl": asyncio.base_events.ssl is sys.modules.get("ssl")}))
        """
    )
    assert out == {"did": False, "deferred": False, "ssl": True}
