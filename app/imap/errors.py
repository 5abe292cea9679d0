"""Exceptions of the IMAP package.

One base, :class:`IMAPError`; every subclass carries what a reply needs as
attributes. Messages are chosen by the core and safe to send to a client: they
never contain internal details or echo large client input.
"""


class IMAPError(Exception):
    """Base of every IMAP error; ``message`` is client-safe text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ParseError(IMAPError):
    """A command could not be parsed: the reply is ``<tag> BAD [code] message``.

    ``tag`` is None when no valid tag was seen; the reply is then ``* BAD``.
    ``code`` is an optional response code (for example ``TOOBIG``).
    """

    def __init__(self, tag: str | None, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag
        self.code = code

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParseError):
            return NotImplemented
        return (self.tag, self.message, self.code) == (other.tag, other.message, other.code)

    def __hash__(self) -> int:
        return hash((self.tag, self.message, self.code))

    def __repr__(self) -> str:
        return f"ParseError(tag={self.tag!r}, message={self.message!r}, code={self.code!r})"


class IMAPNo(IMAPError):
    """A command handler refuses: ``<tag> NO [code] message``."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class IMAPBad(IMAPError):
    """A command handler finds the command invalid in this state: ``<tag> BAD``."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
