"""HTTP front and the web interfaces (admin, account, webmail, well-known endpoints)."""
