"""Channel-binding data for a live TLS connection: ``tls-unique`` and ``tls-exporter``.

* TLS <= 1.2: ``tls-unique`` (RFC 5929 §3) from
  :meth:`ssl.SSLObject.get_channel_binding`.
* TLS 1.3: ``tls-exporter`` (RFC 9266 §2): the TLS exporter with label
  ``EXPORTER-Channel-Binding``, an empty context and 32 bytes. ``tls-unique`` is
  undefined for TLS 1.3 (RFC 9266 §3) and is never offered there.

Python's :mod:`ssl` has no keying-material exporter, so ``tls-exporter`` calls
``SSL_export_keying_material`` through :mod:`ctypes` on the very libssl the
``_ssl`` extension links (found in the process's loaded objects, never
cryptography's bundled OpenSSL). The ``SSL *`` is read from the ``_ssl._SSLSocket``
object behind the Python wrapper and accepted only if ``SSL_get_ex_data(p, 0)``
(where CPython stores its object as app data) equals that object's address; the
library is accepted only if its version equals :data:`ssl.OPENSSL_VERSION_NUMBER`.

All of that is gated by a self-test (:func:`tls_exporter_available`), run once by
the first TLS 1.3 connection (about 5 ms):
an in-memory TLS 1.3 handshake whose two ends must compute the same 32-byte
exporter value. When any step fails the feature is off and TLS 1.3 connections
get no channel binding (so no ``-PLUS`` mechanisms), which is safe. The self-test
result and the located library are cached for the process (:func:`functools.cache`).
"""

import contextlib
import ctypes
import functools
import logging
import os
import re
import ssl
import struct
import weakref
from dataclasses import dataclass

from app.auth.base import TLS_EXPORTER, TLS_UNIQUE, ChannelBinding
from app.tls.certs import memory_files

log = logging.getLogger(__name__)

EXPORTER_LABEL = b"EXPORTER-Channel-Binding"  # RFC 9266 §2
EXPORTER_LENGTH = 32  # RFC 9266 §2

__all__ = [
    "ChannelBinding",
    "channel_binding_for",
    "memory_tls_pair",
    "tls_exporter",
    "tls_exporter_available",
]

_PTR = ctypes.sizeof(ctypes.c_void_p)
_PTR_FMT = "Q" if _PTR == 8 else "I"
# CPython's PySSLSocket: PyObject_HEAD (2 pointers), Socket weakref, then SSL *ssl.
_EXPECTED_INDEX = 3


@dataclass(frozen=True, slots=True)
class _LibSSL:
    lib: ctypes.CDLL
    path: str


def _loaded_libssl_paths() -> list[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    paths: list[str] = []
    for line in lines:
        fields = line.split(None, 5)
        if (
            len(fields) == 6
            and re.search(r"/libssl[\w.\-]*\.so", fields[5])
            and fields[5] not in paths
        ):
            paths.append(fields[5])
    return paths


def _needed_libssl_names() -> list[str]:
    """The libssl names the ``_ssl`` extension was linked against (from its dynstr)."""
    import _ssl

    path = getattr(_ssl, "__file__", None)
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            data = f.read(8 * 2**20)
    except OSError:
        return []
    names = re.findall(rb"libssl[\w.\-]*\.(?:so[\d.]*|dylib)", data)
    return sorted({n.decode() for n in names})


@functools.cache
def _libssl() -> _LibSSL | None:
    import _ssl  # noqa: F401  (ensure its libssl is mapped before looking)

    needed = _needed_libssl_names()
    loaded = _loaded_libssl_paths()
    candidates = [p for p in loaded if not needed or os.path.basename(p) in needed]
    if not candidates and not loaded:
        from ctypes.util import find_library  # loads subprocess, tempfile: fallback only

        found = find_library("ssl")
        candidates = [found] if found else []
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.OpenSSL_version_num.restype = ctypes.c_ulong
            lib.OpenSSL_version_num.argtypes = []
            if lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
                continue
            lib.SSL_get_ex_data.restype = ctypes.c_void_p
            lib.SSL_get_ex_data.argtypes = [ctypes.c_void_p, ctypes.c_int]
            lib.SSL_export_keying_material.restype = ctypes.c_int
            lib.SSL_export_keying_material.argtypes = [
                ctypes.c_void_p,
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_char_p,
                ctypes.c_size_t,
                ctypes.c_int,
            ]
        except (OSError, AttributeError):
            continue
        return _LibSSL(lib, path)
    return None


def _readable_ranges() -> list[tuple[int, int]] | None:
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or not fields[1].startswith("r"):
            continue
        lo, _, hi = fields[0].partition("-")
        with contextlib.suppress(ValueError):
            out.append((int(lo, 16), int(hi, 16)))
    return out


def _inner(obj: object) -> object | None:
    """The ``_ssl._SSLSocket`` behind an SSLObject/SSLSocket (or the object itself)."""
    import _ssl

    sslsocket_type: type = getattr(_ssl, "_SSLSocket")  # noqa: B009  (untyped in typeshed)
    if isinstance(obj, sslsocket_type):
        return obj
    inner: object = getattr(obj, "_sslobj", None)
    return inner if isinstance(inner, sslsocket_type) else None


def _words(obj: object) -> tuple[int, ...]:
    size = type(obj).__basicsize__
    raw = ctypes.string_at(id(obj), size - size % _PTR)
    return struct.unpack(f"{len(raw) // _PTR}{_PTR_FMT}", raw)


def _is_ssl_of(lib: _LibSSL, p: int, obj: object) -> bool:
    return bool(lib.lib.SSL_get_ex_data(p, 0) == id(obj))


def _discover_index(lib: _LibSSL, obj: object) -> int | None:
    """Find which pointer-sized word of ``obj`` holds its ``SSL *``.

    The CPython layout index is tried first; other words are tried only if they
    point into readable memory and are not Python objects we can recognise, which
    keeps a future layout change from dereferencing a wild pointer.
    """
    words = _words(obj)
    ranges = _readable_ranges()
    if len(words) > _EXPECTED_INDEX:
        p = words[_EXPECTED_INDEX]
        if (
            p
            and p % _PTR == 0
            and _readable(ranges, p, 1024, require=False)
            and _is_ssl_of(lib, p, obj)
        ):
            return _EXPECTED_INDEX
    if ranges is None:
        return None
    known = {id(x) for x in _python_refs(obj)}
    type_ids = {id(t) for t in (weakref.ref, str, type(None), type(obj), ssl.SSLContext)}
    for i, p in enumerate(words):
        if i < 2 or i == _EXPECTED_INDEX or not p or p % _PTR or p in known:
            continue
        if not _readable(ranges, p, 1024, require=True):
            continue
        ob_type = struct.unpack(_PTR_FMT, ctypes.string_at(p + _PTR, _PTR))[0]
        if ob_type in type_ids:
            continue
        if _is_ssl_of(lib, p, obj):
            return i
    return None


def _python_refs(obj: object) -> list[object]:
    refs: list[object] = [None]
    for name in ("context", "owner", "server_hostname", "session"):
        with contextlib.suppress(Exception):
            refs.append(getattr(obj, name))
    return refs


def _readable(ranges: list[tuple[int, int]] | None, p: int, n: int, *, require: bool) -> bool:
    if ranges is None:
        return not require
    return any(lo <= p and p + n <= hi for lo, hi in ranges)


def _export_raw(lib: _LibSSL, index: int, sslobj: object) -> bytes | None:
    obj = _inner(sslobj)
    if obj is None:
        return None
    words = _words(obj)
    if index >= len(words):
        return None
    p = words[index]
    if not p or not _is_ssl_of(lib, p, obj):
        return None
    out = ctypes.create_string_buffer(EXPORTER_LENGTH)
    # RFC 9266 §2: empty context; TLS 1.3 treats empty and absent alike (RFC 8446 §7.5).
    rc = lib.lib.SSL_export_keying_material(
        p, out, EXPORTER_LENGTH, EXPORTER_LABEL, len(EXPORTER_LABEL), b"", 0, 1
    )
    return out.raw if rc == 1 else None


@dataclass(frozen=True, slots=True)
class _Exporter:
    lib: _LibSSL
    index: int


# The self-test's certificate and key. They only ever serve a handshake between two
# in-memory ends of this process (never a socket), so being public is harmless; a
# constant avoids generating a key, and loading the cryptography library, for it.
_SELFTEST_CERT = b"""-----BEGIN CERTIFICATE-----
MIIBJDCBy6ADAgECAgEBMAoGCCqGSM49BAMCMBsxGTAXBgNVBAMMEHNlbGZ0ZXN0
LmludmFsaWQwIBcNMjYwMTAxMDAwMDAwWhgPMjEyNjAxMDEwMDAwMDBaMBsxGTAX
BgNVBAMMEHNlbGZ0ZXN0LmludmFsaWQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AASWBd/L+7Ys/EncitUFzvcqtBfvVD+ry6GWGdUzXBhrf/1b3KkFS7vnRBoG95B1
nHMx6sZCf/8HCzXzJHTYqu1lMAoGCCqGSM49BAMCA0gAMEUCIQCG2eDiEg8nyXD+
jnH18SreJBuKn5ay5yvMZYLT8xmQPwIgAs634VjdUMds4gFnEuyuVbvYSr8b5RP/
5gDYgUrs5Kk=
-----END CERTIFICATE-----
"""
_SELFTEST_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCUk2r8i//m2AV8WA
VkJD5rcO0/vCdquZPB7+Ib8wmBqhRANCAASWBd/L+7Ys/EncitUFzvcqtBfvVD+r
y6GWGdUzXBhrf/1b3KkFS7vnRBoG95B1nHMx6sZCf/8HCzXzJHTYqu1l
-----END PRIVATE KEY-----
"""


def memory_tls_pair(
    certfile: str, keyfile: str, *, version: ssl.TLSVersion, client_keylog: str | None = None
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Handshake a client and a server :class:`ssl.SSLObject` over memory BIOs.

    Used by the self-test and by tests; ``version`` pins the TLS version;
    ``client_keylog`` (tests only) names an NSS key log file for the client.
    """
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(certfile, keyfile)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    if client_keylog:
        cctx.keylog_filename = client_keylog
    for ctx in (sctx, cctx):
        ctx.minimum_version = version
        ctx.maximum_version = version
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = cctx.wrap_bio(c_in, c_out, server_side=False)
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for key, end in (("c", client), ("s", server)):
            if not done[key]:
                try:
                    end.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done["c"] and done["s"]:
            # TLS 1.3 session tickets arrive after the handshake; let the client read them.
            with contextlib.suppress(ssl.SSLWantReadError):
                client.read(0)
            return client, server
    raise ssl.SSLError("in-memory handshake did not complete")


@functools.cache
def _exporter() -> _Exporter | None:
    lib = _libssl()
    if lib is None:
        log.info("tls-exporter unavailable", extra={"why": "libssl not found"})
        return None
    try:
        with memory_files([_SELFTEST_CERT, _SELFTEST_KEY]) as (certfile, keyfile):
            client, server = memory_tls_pair(certfile, keyfile, version=ssl.TLSVersion.TLSv1_3)
        ci, si = _inner(client), _inner(server)
        if ci is None or si is None:
            raise ValueError("no _SSLSocket behind SSLObject")
        index = _discover_index(lib, si)
        if index is None or _discover_index(lib, ci) != index:
            raise ValueError("SSL pointer not found")
        a = _export_raw(lib, index, server)
        b = _export_raw(lib, index, client)
        if a is None or b is None or a != b or len(a) != EXPORTER_LENGTH:
            raise ValueError("exporter values differ")
    except Exception as e:  # any failure just disables the feature
        log.info("tls-exporter unavailable", extra={"why": f"self-test failed: {e}"})
        return None
    log.debug("tls-exporter available", extra={"libssl": lib.path})
    return _Exporter(lib, index)


def tls_exporter_available() -> bool:
    """Run (once per process) the in-memory TLS 1.3 self-test; True if it passed."""
    return _exporter() is not None


def tls_exporter(sslobj: ssl.SSLObject | ssl.SSLSocket) -> bytes | None:
    """RFC 9266 ``tls-exporter`` value of a TLS 1.3 connection, or None if unavailable."""
    ex = _exporter()
    if ex is None or sslobj.version() != "TLSv1.3":
        return None
    return _export_raw(ex.lib, ex.index, sslobj)


def channel_binding_for(sslobj: ssl.SSLObject | ssl.SSLSocket) -> ChannelBinding | None:
    """Channel binding for a connection after its handshake, or None.

    ``tls-exporter`` for TLS 1.3 (when the self-test passed), ``tls-unique`` for
    TLS 1.2 and older, None otherwise (never ``tls-unique`` on TLS 1.3, RFC 9266 §3).
    The first TLS 1.3 call runs the self-test (about 5 ms, once per process, on the
    caller's thread: a server's protocol code loads with its first connection, and an
    idle server should not hold OpenSSL's handshake state for it).
    """
    version = sslobj.version()
    if version is None:
        return None
    if version == "TLSv1.3":
        data = tls_exporter(sslobj)
        return ChannelBinding(TLS_EXPORTER, data) if data else None
    if version in ("TLSv1.2", "TLSv1.1", "TLSv1"):
        unique = sslobj.get_channel_binding(TLS_UNIQUE)
        return ChannelBinding(TLS_UNIQUE, unique) if unique else None
    return None
