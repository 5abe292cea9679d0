"""Message authentication: SPF, DKIM, DMARC, ARC, iprev, DNSBL, Authentication-Results.

Every check takes a resolver and bytes and returns a result whose status is always set.
Imports nothing from store, config, serve or web."""
