"""RFC 5322 / MIME parsing, addresses (EAI/IDNA), dates, encoded words.

Pure functions and values, no I/O; imports nothing from store, config, serve or web."""
