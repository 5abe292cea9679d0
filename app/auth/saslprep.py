"""SASLprep (RFC 4013), the stringprep (RFC 3454) profile for user names and passwords.

Printable ASCII, what nearly every user name and password is, comes out unchanged:
every mapping, prohibited character and bidirectional rule of the profile concerns
other characters, and NFKC leaves ASCII alone. Such strings are answered at once;
others go through the full procedure (:mod:`app.auth.saslprep_rules`, on the
stdlib :mod:`stringprep` tables), loaded when first needed. The Unicode tables are
not read in for a login with an ASCII password (~0.5 MiB of the server's memory).

Two modes, as RFC 3454 §7 distinguishes them:

* stored strings (``allow_unassigned=False``, the default): unassigned code points
  are rejected. Used when a password is set.
* queries (``allow_unassigned=True``): unassigned code points pass through. Used when
  a password presented at login is checked.
"""


def saslprep(s: str, *, allow_unassigned: bool = False) -> str:
    """Prepare ``s`` with SASLprep (RFC 4013) and return the result.

    Raises :class:`AuthError` (``kind="saslprep"``) when the string contains a
    prohibited character, violates the bidi rules, or (for stored strings, the
    default) contains an unassigned code point. The error never names the offending
    character: the string may be a password.
    """
    if s.isascii() and s.isprintable():
        return s
    from app.auth.saslprep_rules import prepare

    return prepare(s, allow_unassigned)
