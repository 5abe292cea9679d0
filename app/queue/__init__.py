"""Outgoing queue: scheduling, retries, DSNs, MTA-STS, DANE, TLS reporting data."""
