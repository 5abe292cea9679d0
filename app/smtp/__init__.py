"""SMTP: sans-I/O protocol core, reply codes, asyncio server and client."""
