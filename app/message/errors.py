"""Exceptions of :mod:`app.message`; every one carries its data as attributes."""

import enum


class MessageError(ValueError):
    """Base of all errors raised by :mod:`app.message`.

    ``text`` is the offending input (possibly shortened), ``reason`` a short
    human-readable explanation that is safe to log (never sent to a client as-is).
    """

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{reason}: {text[:200]!r}")
        self.text = text
        self.reason = reason


class AddressProblem(enum.StrEnum):
    """Why an address or SMTP path was rejected; maps to SMTP replies."""

    SYNTAX = "syntax"  # 501 5.1.3 / 553 5.1.3
    LOCALPART_TOO_LONG = "localpart-too-long"  # RFC 5321 4.5.3.1.1: 553 5.1.3
    DOMAIN_TOO_LONG = "domain-too-long"  # RFC 5321 4.5.3.1.2
    PATH_TOO_LONG = "path-too-long"  # RFC 5321 4.5.3.1.3
    BAD_DOMAIN = "bad-domain"  # 501 5.1.2
    BAD_LITERAL = "bad-literal"  # 501 5.1.2
    NEEDS_SMTPUTF8 = "needs-smtputf8"  # RFC 6531 3.5: 553 5.6.7


class AddressError(MessageError):
    """An email address or SMTP path that cannot be parsed."""

    def __init__(self, text: str, reason: str, problem: AddressProblem) -> None:
        super().__init__(text, reason)
        self.problem = problem


class DateError(MessageError):
    """A date/time header value that cannot be parsed."""


class StructureError(MessageError):
    """Malformed MIME structure (strict parsing) or a parse limit exceeded.

    ``limit`` names the exceeded limit (``"depth"`` or ``"parts"``) or is ``""``
    for a structural problem; ``offset`` is where in the message it was found.
    """

    def __init__(self, text: str, reason: str, *, limit: str = "", offset: int = -1) -> None:
        super().__init__(text, reason)
        self.limit = limit
        self.offset = offset
