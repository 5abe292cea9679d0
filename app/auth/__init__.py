"""Credentials and SASL: password storage, SCRAM, CRAM-MD5, channel binding, failure rate limits.

Shared by SMTP, IMAP and the web interfaces."""
