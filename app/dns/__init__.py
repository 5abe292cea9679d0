"""Asynchronous DNS resolution on dnspython, plus a loopback authoritative server for tests.

Imports nothing from store, config, serve or web: usable as a library on its own.

Modules:

- :mod:`app.dns.domain`: :class:`Domain`, an IDNA-aware validated domain name.
- :mod:`app.dns.resolver`: :class:`Resolver`, an async stub resolver. Every result is
  an :class:`Answer` carrying ``authentic`` (the AD bit, for DANE/MTA-STS decisions),
  the TTL and the CNAMEs followed. Failures are :class:`DNSError` subclasses:
  :class:`NotFound` (``nxdomain`` True for NXDOMAIN, False for NODATA),
  :class:`TempError` (timeout, SERVFAIL, REFUSED, network; maps to SPF/DMARC
  temperror) and :class:`InvalidName` (raised before any query).
- :mod:`app.dns.loopback`: :class:`~app.dns.loopback.LoopbackDNSServer`, a real
  authoritative server on 127.0.0.1/::1 in its own thread, for tests and local
  testing setups. Not imported here, so production code does not load it.

Invariants:

- Names in results are absolute lower-case A-label text with a trailing dot
  (``"mx.example."``; a null MX host is ``"."``); inputs may be ``str`` in either
  IDNA form, with or without the trailing dot, or a :class:`Domain`.
- A lookup never takes longer than the resolver's ``timeout`` (all attempts and the
  TCP retry after truncation included).
- Positive and negative answers are cached by TTL (RFC 2308 for negative answers);
  temporary errors are never cached; identical concurrent lookups share one query.
- No module-level mutable state: caches belong to a Resolver instance.
- This ``__init__`` imports nothing, so ``app.dns.domain`` stays cheap to import
  (the resolver pulls in dnspython's async query machinery, ~40 ms); import names
  from the submodules: ``from app.dns.resolver import Resolver, NotFound``.
"""
