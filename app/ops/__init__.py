"""Operator tasks: quickstart, DNS records, backup, verifydata, import/export."""
