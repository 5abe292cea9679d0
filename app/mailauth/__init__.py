"""Message authentication: SPF, DKIM, DMARC, ARC, iprev, DNSBL, Authentication-Results.

Every check takes a resolver and bytes and returns a result whose status is always set.
Imports nothing from store, config, serve or web.

Modules: ``spf`` (RFC 7208 check_host, HELO/MAIL FROM verify, Received-SPF),
``dmarc`` (records, policy discovery by RFC 9989 DNS tree walk or RFC 7489 public
suffix list, evaluation with alignment), ``publicsuffix`` (the shipped Public Suffix
List in ``data/``, parsed once on first use), ``iprev`` (RFC 8601 §3), ``dnsbl``
(RFC 5782), ``authres`` (RFC 8601 Authentication-Results: rendering, and removal of
incoming fields carrying our authserv-id). DNS lookups that the standards let run
independently (MX host addresses, PTR names, tree-walk levels) run concurrently;
results are consumed in the standard's order so limits and errors match a
sequential evaluation."""
