"""DMARC and TLS-RPT reports, incoming and outgoing."""
