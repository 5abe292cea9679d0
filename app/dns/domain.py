"""IDNA-aware domain names.

A :class:`Domain` keeps both forms of a name: ``ascii`` (A-labels, lower case, what
goes on the wire and into DNS) and ``unicode`` (U-labels, for display and SMTPUTF8).
Comparison and hashing use the ASCII form. IDNA 2008 (UTS 46 mapping) is used, so
``Bücher.example`` and ``xn--bcher-kva.example`` are the same domain.
"""

import functools
from dataclasses import dataclass


class DomainError(ValueError):
    """A domain name that is not valid; ``text`` holds the input."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid domain {text!r}: {reason}")
        self.text = text
        self.reason = reason


@dataclass(frozen=True, slots=True, order=True)
class Domain:
    """A validated domain name without a trailing dot."""

    ascii: str
    unicode: str

    @classmethod
    def parse(cls, text: str) -> "Domain":
        """Parse a domain in either form; raises :class:`DomainError`.

        Results are memoised: every address of every SMTP command has a domain, and
        the same few recur (a Domain is immutable)."""
        return _parse(text)

    @classmethod
    def _parse_uncached(cls, text: str) -> "Domain":
        t = text.strip().removesuffix(".")
        if not t:
            raise DomainError(text, "empty")
        if len(t) > 253:
            raise DomainError(text, "longer than 253 characters")
        if t.isascii() and "xn--" not in t.lower():
            # The common case needs no IDNA tables (nor dnspython, nor its imports).
            ascii_ = uni = t.lower()
        else:
            ascii_, uni = _idna(text, t)
        for label in ascii_.split("."):
            if not label:
                raise DomainError(text, "empty label")
            if len(label) > 63:
                raise DomainError(text, "label longer than 63 characters")
            if label.startswith("-") or label.endswith("-"):
                raise DomainError(text, "label starts or ends with a hyphen")
            if not all(c.isalnum() or c in "-_" for c in label):
                raise DomainError(text, f"invalid character in label {label!r}")
        return cls(ascii_, uni)

    def __str__(self) -> str:
        return self.ascii

    def is_subdomain_of(self, other: "Domain") -> bool:
        """True when this domain equals ``other`` or lies below it."""
        return self.ascii == other.ascii or self.ascii.endswith("." + other.ascii)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.ascii.split("."))


@functools.lru_cache(maxsize=8192)
def _parse(text: str) -> Domain:
    return Domain._parse_uncached(text)


def _idna(text: str, t: str) -> tuple[str, str]:
    """(A-label form, U-label form) of a name with U-labels or ``xn--`` labels, by IDNA
    2008 with the UTS 46 mapping. dnspython (and the idna tables) load on first use."""
    import dns.exception
    import dns.name

    codec = dns.name.IDNA_2008_Practical
    try:
        if t.isascii():
            name = dns.name.from_text(t.lower() + ".")
        else:
            name = dns.name.from_unicode(t + ".", idna_codec=codec)
        ascii_ = name.to_text(omit_final_dot=True).lower()
        uni = name.to_unicode(omit_final_dot=True, idna_codec=codec).lower()
    except (dns.exception.DNSException, UnicodeError) as e:
        raise DomainError(text, str(e) or type(e).__name__) from None
    return ascii_, uni
