"""OpenSSL loads when TLS or a hash is first needed, not with asyncio.

Importing ``ssl`` (or ``hashlib``, which loads OpenSSL's libcrypto and lists its
digests) costs a process about 4.5 MiB of RSS, and ``asyncio`` imports ``ssl`` at
once. A mail server that is idle, or whose clients have not yet connected over TLS,
needs none of it: certificate names and expiry come from :mod:`app.tls.der`, and the
server contexts are built on the first TLS handshake (:class:`app.tls.certs.CertStore`).

:func:`import_asyncio_without_ssl` imports asyncio while ``ssl`` is unavailable (its
modules then hold ``ssl = None``, as on a Python built without OpenSSL) and installs
an import hook: when anything imports ``ssl`` later, the hook gives those asyncio
modules the real module before the importer gets it, so asyncio's TLS works as
usual from then on. Only Python versions whose asyncio has been checked for what it
derives from ``ssl`` at import are handled (:data:`CHECKED_VERSIONS`); on others the
function does nothing and asyncio imports ``ssl`` itself.

Call it first thing in a process, before anything imports asyncio; afterwards it
does nothing. The rest of the code imports ``ssl``, ``hashlib``, ``hmac`` and
``secrets`` inside the functions that use them, on the paths an idle server runs.

Layer 2: imports nothing from ``app``.
"""

import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

# asyncio of these versions keeps, from ``ssl``, the module itself (as ``ssl``) in the
# modules below and ``sslproto.SSLAgainErrors``; nothing else is computed at import.
CHECKED_VERSIONS = ((3, 11), (3, 12), (3, 13))

_patched: list[ModuleType] = []  # asyncio modules imported while ssl was unavailable


def import_asyncio_without_ssl() -> bool:
    """Import asyncio without ``ssl`` and attach ``ssl`` when first imported.

    Returns whether it did so (False: asyncio or ssl already imported, or an
    unchecked Python version).
    """
    if sys.version_info[:2] not in CHECKED_VERSIONS:
        return False
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return False
    before = set(sys.modules)
    sys.modules["ssl"] = None  # type: ignore[assignment]  # "import ssl" raises ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    _patched[:] = [
        m
        for name in sorted(set(sys.modules) - before)
        if (m := sys.modules[name]) is not None and "ssl" in vars(m) and vars(m)["ssl"] is None
    ]
    sys.meta_path.insert(0, _SSLImportHook())
    return True


def attach(ssl_module: ModuleType) -> None:
    """Give the asyncio modules imported without ``ssl`` the real module."""
    for mod in _patched:
        if vars(mod).get("ssl") is None:
            mod.ssl = ssl_module  # type: ignore[attr-defined]
    sslproto = sys.modules.get("asyncio.sslproto")
    if sslproto is not None and not hasattr(sslproto, "SSLAgainErrors"):
        sslproto.SSLAgainErrors = (ssl_module.SSLWantReadError, ssl_module.SSLSyscallError)  # type: ignore[attr-defined]
    _patched.clear()


def deferred() -> bool:
    """Whether asyncio still waits for ``ssl`` (nothing has imported it yet)."""
    return bool(_patched)


# Plain classes, not importlib.abc's: importing importlib.abc (or importlib.util)
# loads importlib.resources and tempfile, which a server does not otherwise need.
class _AttachingLoader:
    """Runs the real loader of ``ssl``, then :func:`attach`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._inner.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        attach(module)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, ... for tracebacks
        return getattr(self._inner, name)


class _SSLImportHook:
    """Finds ``ssl`` through the other finders once, with an attaching loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "ssl":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec: importlib.machinery.ModuleSpec | None = (
                find(fullname, path, target) if find is not None else None
            )
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _AttachingLoader(spec.loader)  # type: ignore[assignment]
                return spec
        return None
