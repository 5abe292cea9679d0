"""Inbound delivery pipeline: recipient resolution, checks, junk classification, storing."""
