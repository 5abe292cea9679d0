"""Asynchronous DNS resolution on dnspython, plus a loopback authoritative server for tests.

Imports nothing from store, config, serve or web: usable as a library on its own."""
