"""HTTP front and the web interfaces (admin, account, setup wizard, well-known endpoints).

Layer 3: imports store, auth, tls, config, dns, metrics and services, never serve,
ops or cli. Invariants:

* ``http`` is our own HTTP/1.1 server; every request has size limits and timeouts,
  client mistakes get a short 4xx, handler bugs a 500 page and one logged traceback.
* Bottle apps are built per server by a function (no module-level state) and run in
  the bounded ``services.web_executor``; they reach the event loop and the admin
  database only through :class:`app.web.context.WebContext`.
* Every settings change goes through ``app.store.admincmds`` (as the CLI does) and is
  applied at once; every state-changing request needs a session and its CSRF token.
* Templates escape all output; static files come only from ``app/web/static``.
"""
