"""The IMAP ENVELOPE of a message (RFC 3501 7.4.2, RFC 9051 7.5.2).

Strings are kept as IMAP wants them: the unfolded raw header values (encoded
words not decoded) and addresses split into (name, adl, mailbox, host).
"""

from dataclasses import dataclass
from datetime import datetime

from app.message.addrlist import Group, Mailbox, parse_address_list
from app.message.dates import parse_date
from app.message.encoded import decode_words
from app.message.errors import DateError
from app.message.headers import Header


@dataclass(frozen=True, slots=True)
class EnvelopeAddress:
    """One IMAP address structure; None is NIL.

    A group start is ``(None, None, name, None)`` and a group end is all None
    (RFC 3501 7.4.2). ``host`` is ``""`` (not NIL) for a mailbox without domain,
    so it is never mistaken for a group marker.
    """

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


Addresses = tuple[EnvelopeAddress, ...]


@dataclass(frozen=True, slots=True)
class Envelope:
    """Header fields of an IMAP ENVELOPE.

    Sender and Reply-To default to From when absent or empty (RFC 3501 7.4.2).
    """

    date: str | None
    subject: str | None
    from_: Addresses
    sender: Addresses
    reply_to: Addresses
    to: Addresses
    cc: Addresses
    bcc: Addresses
    in_reply_to: str | None
    message_id: str | None

    def parsed_date(self) -> datetime | None:
        """The Date header as an aware datetime, None when absent or unparsable."""
        if not self.date:
            return None
        try:
            return parse_date(self.date)
        except DateError:
            return None

    def decoded_subject(self) -> str | None:
        """The subject with RFC 2047 encoded words decoded."""
        return None if self.subject is None else decode_words(self.subject)

    def to_list(self) -> list[object]:
        """A JSON-friendly list form (see :meth:`from_list`)."""
        return [
            self.date,
            self.subject,
            *([[a.name, a.adl, a.mailbox, a.host] for a in lst] for lst in self._lists()),
            self.in_reply_to,
            self.message_id,
        ]

    def _lists(self) -> tuple[Addresses, ...]:
        return (self.from_, self.sender, self.reply_to, self.to, self.cc, self.bcc)

    @classmethod
    def from_list(cls, v: list[object]) -> "Envelope":
        """Inverse of :meth:`to_list`; raises ValueError/TypeError on bad input."""
        if len(v) != 10:
            raise ValueError("envelope needs 10 items")

        def s(x: object) -> str | None:
            if x is not None and not isinstance(x, str):
                raise TypeError("string expected")
            return x

        def addrs(x: object) -> Addresses:
            if not isinstance(x, list):
                raise TypeError("list expected")
            out = []
            for a in x:
                if not isinstance(a, list) or len(a) != 4:
                    raise TypeError("address needs 4 items")
                out.append(EnvelopeAddress(s(a[0]), s(a[1]), s(a[2]), s(a[3])))
            return tuple(out)

        return cls(
            s(v[0]),
            s(v[1]),
            addrs(v[2]),
            addrs(v[3]),
            addrs(v[4]),
            addrs(v[5]),
            addrs(v[6]),
            addrs(v[7]),
            s(v[8]),
            s(v[9]),
        )


def _mb(m: Mailbox) -> EnvelopeAddress:
    return EnvelopeAddress(m.raw_name or None, m.adl or None, m.localpart, m.host)


def envelope_addresses(items: tuple[Mailbox | Group, ...]) -> Addresses:
    """Convert a parsed address list to IMAP address structures with group markers."""
    out: list[EnvelopeAddress] = []
    for it in items:
        if isinstance(it, Group):
            out.append(EnvelopeAddress(None, None, it.raw_name, None))
            out.extend(_mb(m) for m in it.members)
            out.append(EnvelopeAddress(None, None, None, None))
        else:
            out.append(_mb(it))
    return tuple(out)


_FIELDS = (
    "date",
    "subject",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "in-reply-to",
    "message-id",
)


def _addrs(v: str | None) -> Addresses:
    return envelope_addresses(parse_address_list(v)) if v else ()


def envelope_from_header(header: Header) -> Envelope:
    """Build the ENVELOPE from a parsed header; never raises."""
    date, subject, fr, se, rt, to, cc, bcc, irt, mid = header.pick(_FIELDS)
    from_ = _addrs(fr)
    return Envelope(
        date,
        subject,
        from_,
        _addrs(se) or from_,
        _addrs(rt) or from_,
        _addrs(to),
        _addrs(cc),
        _addrs(bcc),
        irt,
        mid,
    )
