"""Credentials and SASL: password storage, SCRAM, CRAM-MD5, channel binding, failure rate limits.

Shared by SMTP, IMAP and the web interfaces.

Modules:

* :mod:`app.auth.base` — :class:`~app.auth.base.AuthError` (the package's one
  exception, data in attributes) and :class:`~app.auth.base.ChannelBinding`.
* :mod:`app.auth.saslprep` — SASLprep (RFC 4013) for passwords.
* :mod:`app.auth.credentials` — :class:`~app.auth.credentials.Credentials`: scrypt,
  SCRAM-SHA-1/-256 and CRAM-MD5 verifiers derived from a password, versioned JSON;
  ``check_password`` and ``cram_md5_verify``.
* :mod:`app.auth.cram` — HMAC-MD5 inner/outer states (pure-Python MD5 compression).
* :mod:`app.auth.scram` — sans-I/O SCRAM server and client (RFC 5802, RFC 7677).
* :mod:`app.auth.sasl` — sans-I/O server mechanisms with one event interface
  (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1/-256 and -PLUS), ``mechanisms_for``.
* :mod:`app.auth.channelbinding` — ``tls-unique`` / ``tls-exporter`` for a live
  TLS connection; the first TLS 1.3 connection runs its self-test.
* :mod:`app.auth.ratelimit` — failed-auth limits per IP class (mox's windows), the
  per-connection delay, and the fail2ban-friendly failure log line.

Invariants: no plaintext password is stored, logged or kept after a check; secret
comparisons use :func:`hmac.compare_digest`; ``scram`` and ``sasl`` do no I/O; scrypt
checks (``check_password``, PLAIN/LOGIN ``credentials()``) are CPU-heavy and belong
in a bounded executor. This package imports nothing from store, config, serve or web.
This ``__init__`` imports no submodule, so importing one stays cheap.
"""
