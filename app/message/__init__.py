"""RFC 5322 / MIME parsing, addresses (EAI/IDNA), dates, encoded words.

Pure functions and values, no I/O; imports nothing from store, config, serve or web.

Modules, one concept each:

- ``headers``   header-section scanner over raw bytes (offsets, unfolding, RFC 6532)
- ``encoded``   RFC 2047 encoded words, RFC 2045/2231 parameters, charsets
- ``address``   :class:`Address`, SMTP paths (RFC 5321 4.1.2, RFC 6531), local parts
- ``addrlist``  address lists in headers (RFC 5322 3.4, groups, obsolete forms)
- ``dates``     RFC 5322 date-time parsing (incl. obsolete forms) and formatting
- ``envelope``  the IMAP ENVELOPE
- ``part``      the MIME tree (:func:`parse`, :func:`parse_strict`, JSON round trip)
- ``body``      transfer-encoding and charset decoding of part bodies
- ``thread``    Message-ID/References and the RFC 5256 base subject
- ``summary``   what the store caches per message
- ``fixup``     CRLF repair

Invariants: tolerant entry points (``parse``, ``parse_address_list``,
``summarize``, ``decode_words``) never raise on any input; strict ones raise a
subclass of :class:`MessageError` carrying the input and reason as attributes.
Offsets in a :class:`Part` index the raw message bytes, so the store can serve
BODY[...] sections without reparsing.
"""

from app.message.address import Address, parse_address, parse_smtp_path
from app.message.addrlist import Group, Mailbox, parse_address_list
from app.message.dates import format_date, parse_date
from app.message.encoded import decode_words
from app.message.envelope import Envelope, EnvelopeAddress
from app.message.errors import AddressError, AddressProblem, DateError, MessageError, StructureError
from app.message.part import Part, parse, parse_strict
from app.message.thread import subject_base

__all__ = [
    "Address",
    "AddressError",
    "AddressProblem",
    "DateError",
    "Envelope",
    "EnvelopeAddress",
    "Group",
    "Mailbox",
    "MessageError",
    "Part",
    "StructureError",
    "decode_words",
    "format_date",
    "parse",
    "parse_address",
    "parse_address_list",
    "parse_date",
    "parse_smtp_path",
    "parse_strict",
    "subject_base",
]
