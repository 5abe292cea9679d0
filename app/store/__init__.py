"""Durable storage on APSW: admin database, per-account message stores, group commit.

All SQLite access in Pillarbox goes through this package."""
