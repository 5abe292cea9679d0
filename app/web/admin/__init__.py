"""The admin web interface under ``/admin/``: one password (``setadminpassword``),
session login, and pages that change settings through the same admin commands as
the CLI (:mod:`app.store.admincmds`), so every change takes effect at once."""
