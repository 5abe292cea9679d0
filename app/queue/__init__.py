"""Outgoing queue: storage, scheduling, retries, DSNs, routes, MTA-STS, DANE, TLS reporting.

Modules: ``store`` (``data/queue.db`` + message files), ``scheduler`` (when to
attempt what), ``attempt`` (one delivery attempt: MX, MTA-STS, DANE, SMTP client),
``dsn`` (RFC 3464 reports), ``routes`` (transport selection), ``service`` (the
server-facing object: enqueue, control commands, DSN delivery).

Invariants:
- A message is acknowledged to a submitter only after its queue rows committed
  (fsynced WAL; its file, if any, fsynced with its directory before that).
- Recipients in our own domains never enter the queue; they are delivered locally.
- A recipient row is removed in one commit right after the receiver accepted it,
  before anything else happens: delivery is at-least-once, duplicated only when a
  crash falls between the receiver's reply and that commit.
- An attempt is registered (attempt count, next attempt) before it is made, so a
  crash never causes an immediate retry storm.
- A failed recipient's failure DSN is sent before its row is removed; a crash in
  between resends it at the next start. The null sender never gets a DSN.
"""
