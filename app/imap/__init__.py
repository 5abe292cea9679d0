"""IMAP4rev2/IMAP4rev1: sans-I/O parser, modified UTF-7, asyncio server."""
