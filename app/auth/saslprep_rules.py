"""The full SASLprep (RFC 4013) procedure, on the stdlib :mod:`stringprep` tables.

Loaded by :func:`app.auth.saslprep.saslprep` for strings that are not plain
printable ASCII. Unicode 3.2 normalisation (``unicodedata.ucd_3_2_0``) is the
version stringprep is defined on.
"""

import stringprep
import unicodedata
from collections.abc import Callable

from app.auth.base import AuthError

_ucd = unicodedata.ucd_3_2_0

# RFC 4013 §2.3: the prohibited output tables.
_PROHIBITED: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("non-ascii space", stringprep.in_table_c12),
    ("ascii control", stringprep.in_table_c21),
    ("non-ascii control", stringprep.in_table_c22),
    ("private use", stringprep.in_table_c3),
    ("non-character", stringprep.in_table_c4),
    ("surrogate", stringprep.in_table_c5),
    ("inappropriate for plain text", stringprep.in_table_c6),
    ("inappropriate for canonical representation", stringprep.in_table_c7),
    ("change display property or deprecated", stringprep.in_table_c8),
    ("tagging character", stringprep.in_table_c9),
)


def _map(s: str) -> str:
    out = []
    for c in s:
        if stringprep.in_table_c12(c):
            out.append(" ")  # RFC 4013 §2.1: non-ASCII space maps to SPACE
        elif stringprep.in_table_b1(c):
            continue  # RFC 4013 §2.1: "commonly mapped to nothing"
        else:
            out.append(c)
    return "".join(out)


def _check_bidi(s: str) -> None:
    # RFC 4013 §2.4 -> RFC 3454 §6.
    randal = [stringprep.in_table_d1(c) for c in s]
    if not any(randal):
        return
    if any(stringprep.in_table_d2(c) for c in s):
        raise AuthError("saslprep", "string mixes right-to-left and left-to-right characters")
    if not (randal[0] and randal[-1]):  # RFC 3454 §6 item 3
        raise AuthError("saslprep", "right-to-left string must start and end with RandALCat")


def prepare(s: str, allow_unassigned: bool) -> str:
    """:func:`app.auth.saslprep.saslprep` for any string."""
    if not allow_unassigned:
        for c in s:
            if stringprep.in_table_a1(c):  # RFC 3454 §7: stored strings
                raise AuthError("saslprep", "unassigned code point")
    out = _ucd.normalize("NFKC", _map(s))  # RFC 4013 §2.2
    for c in out:
        for name, test in _PROHIBITED:
            if test(c):  # RFC 4013 §2.3
                raise AuthError("saslprep", f"prohibited character ({name})")
        if not allow_unassigned and stringprep.in_table_a1(c):
            raise AuthError("saslprep", "unassigned code point")
    _check_bidi(out)
    return out
