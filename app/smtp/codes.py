"""SMTP reply codes, enhanced status codes and the :class:`Reply` value.

Naming scheme (used everywhere in ``app.smtp``):

* Reply codes: ``C<code>_<NAME>``, e.g. ``C503_BAD_SEQUENCE = 503`` (RFC 5321 4.2.3).
* Enhanced status codes (RFC 3463) are stored *without* their class digit:
  ``SE_<SUBJECT><n>_<DETAIL>_<m> = "n.m"``, e.g. ``SE_PROTO5_SYNTAX_2 = "5.2"``. The
  class (2, 4 or 5) always comes from the reply code, so a 4xx reply can never carry
  a ``5.x.x`` enhanced code: ``Reply(C452_STORAGE_FULL, SE_PROTO5_TOO_MANY_RCPTS_3,
  ...)`` is sent as ``452 4.5.3 ...``.

This module has no I/O and imports nothing from the rest of ``app``.
"""

import re
from dataclasses import dataclass

# Reply codes, RFC 5321 4.2.2/4.2.3 unless noted.
C211_SYSTEM_STATUS = 211
C214_HELP = 214
C220_SERVICE_READY = 220
C221_CLOSING = 221
C235_AUTH_SUCCESS = 235  # RFC 4954 6
C250_COMPLETED = 250
C251_USER_NOT_LOCAL_WILL_FORWARD = 251
C252_CANNOT_VRFY = 252
C334_CONTINUE_AUTH = 334  # RFC 4954 4
C354_START_DATA = 354
C421_SERVICE_UNAVAILABLE = 421
C432_PASSWORD_TRANSITION = 432  # RFC 4954 6
C450_MAILBOX_UNAVAILABLE = 450
C451_LOCAL_ERROR = 451
C452_STORAGE_FULL = 452  # also "too many recipients", RFC 5321 4.5.3.1.10
C454_TEMP_AUTH_FAILURE = 454  # RFC 4954 6
C455_BAD_PARAMS = 455
C500_SYNTAX_ERROR = 500
C501_PARAM_SYNTAX_ERROR = 501
C502_NOT_IMPLEMENTED = 502
C503_BAD_SEQUENCE = 503
C504_PARAM_NOT_IMPLEMENTED = 504
C521_HOST_NO_MAIL = 521  # RFC 7504
C530_SECURITY_REQUIRED = 530  # RFC 3207 4, RFC 4954 6
C534_AUTH_MECH_WEAK = 534  # RFC 4954 6
C535_AUTH_BAD_CREDENTIALS = 535  # RFC 4954 6
C538_ENCRYPTION_REQUIRED_FOR_AUTH = 538  # RFC 4954 6
C550_MAILBOX_UNAVAILABLE = 550
C551_USER_NOT_LOCAL = 551
C552_STORAGE_EXCEEDED = 552
C553_BAD_MAILBOX_NAME = 553
C554_TRANSACTION_FAILED = 554
C555_PARAMS_NOT_RECOGNIZED = 555
C556_DOMAIN_NO_MAIL = 556  # RFC 7504

# Enhanced status codes without the class digit (RFC 3463 3, IANA registry).
# X.0.X other
SE_OTHER0_0 = "0.0"
# X.1.X addressing
SE_ADDR1_OTHER_0 = "1.0"
SE_ADDR1_UNKNOWN_MAILBOX_1 = "1.1"
SE_ADDR1_UNKNOWN_SYSTEM_2 = "1.2"
SE_ADDR1_MAILBOX_SYNTAX_3 = "1.3"
SE_ADDR1_AMBIGUOUS_4 = "1.4"
SE_ADDR1_DEST_VALID_5 = "1.5"
SE_ADDR1_MOVED_6 = "1.6"
SE_ADDR1_SENDER_SYNTAX_7 = "1.7"
SE_ADDR1_BAD_SENDER_SYSTEM_8 = "1.8"
SE_ADDR1_NULL_MX_10 = "1.10"  # RFC 7505
# X.2.X mailbox
SE_MAILBOX2_OTHER_0 = "2.0"
SE_MAILBOX2_DISABLED_1 = "2.1"
SE_MAILBOX2_FULL_2 = "2.2"
SE_MAILBOX2_MSG_TOO_LARGE_3 = "2.3"
SE_MAILBOX2_LIST_EXPANSION_4 = "2.4"
# X.3.X mail system
SE_SYS3_OTHER_0 = "3.0"
SE_SYS3_STORAGE_FULL_1 = "3.1"
SE_SYS3_NOT_ACCEPTING_2 = "3.2"
SE_SYS3_NOT_SUPPORTED_3 = "3.3"
SE_SYS3_MSG_TOO_LARGE_4 = "3.4"
SE_SYS3_MISCONFIGURED_5 = "3.5"
# X.4.X network and routing
SE_NET4_OTHER_0 = "4.0"
SE_NET4_NO_ANSWER_1 = "4.1"
SE_NET4_BAD_CONNECTION_2 = "4.2"
SE_NET4_NAME_3 = "4.3"
SE_NET4_ROUTING_4 = "4.4"
SE_NET4_CONGESTION_5 = "4.5"
SE_NET4_LOOP_6 = "4.6"
SE_NET4_EXPIRED_7 = "4.7"
# X.5.X mail delivery protocol
SE_PROTO5_OTHER_0 = "5.0"
SE_PROTO5_BAD_CMD_OR_SEQ_1 = "5.1"
SE_PROTO5_SYNTAX_2 = "5.2"
SE_PROTO5_TOO_MANY_RCPTS_3 = "5.3"
SE_PROTO5_BAD_PARAMS_4 = "5.4"
SE_PROTO5_PROTOCOL_MISMATCH_5 = "5.5"
SE_PROTO5_AUTH_EXCHANGE_TOO_LONG_6 = "5.6"  # RFC 4954 6
# X.6.X message content
SE_MSG6_OTHER_0 = "6.0"
SE_MSG6_MEDIA_UNSUPPORTED_1 = "6.1"
SE_MSG6_CONVERSION_PROHIBITED_2 = "6.2"
SE_MSG6_CONVERSION_UNSUPPORTED_3 = "6.3"
SE_MSG6_CONVERSION_LOSSY_4 = "6.4"
SE_MSG6_CONVERSION_FAILED_5 = "6.5"
SE_MSG6_NON_ASCII_ADDR_7 = "6.7"  # RFC 6531 3.6
SE_MSG6_UTF8_REPLY_REQUIRED_8 = "6.8"
SE_MSG6_UTF8_CANNOT_TRANSFER_9 = "6.9"
# X.7.X security and policy
SE_POL7_OTHER_0 = "7.0"
SE_POL7_DELIVERY_UNAUTH_1 = "7.1"
SE_POL7_EXPN_PROHIBITED_2 = "7.2"
SE_POL7_CONVERSION_IMPOSSIBLE_3 = "7.3"
SE_POL7_UNSUPPORTED_4 = "7.4"
SE_POL7_CRYPTO_FAILURE_5 = "7.5"
SE_POL7_CRYPTO_UNSUPPORTED_6 = "7.6"
SE_POL7_MSG_INTEGRITY_7 = "7.7"
SE_POL7_AUTH_BAD_CREDENTIALS_8 = "7.8"  # RFC 4954 6
SE_POL7_AUTH_WEAK_MECH_9 = "7.9"
SE_POL7_ENCRYPTION_NEEDED_10 = "7.10"  # RFC 5248
SE_POL7_ENCRYPTION_REQUIRED_FOR_AUTH_11 = "7.11"  # RFC 4954 6
SE_POL7_PASSWORD_TRANSITION_12 = "7.12"
SE_POL7_ACCOUNT_DISABLED_13 = "7.13"
SE_POL7_TRUST_REQUIRED_14 = "7.14"
SE_POL7_NO_DKIM_PASS_20 = "7.20"  # RFC 7372
SE_POL7_NO_DKIM_ACCEPT_21 = "7.21"
SE_POL7_NO_DKIM_AUTHOR_MATCH_22 = "7.22"
SE_POL7_SPF_FAIL_23 = "7.23"
SE_POL7_SPF_ERROR_24 = "7.24"
SE_POL7_REVERSE_DNS_FAIL_25 = "7.25"
SE_POL7_MULTIPLE_AUTH_FAILS_26 = "7.26"
SE_POL7_SENDER_NULL_MX_27 = "7.27"  # RFC 7505
SE_POL7_ARC_FAIL_29 = "7.29"  # RFC 8617
SE_POL7_REQUIRETLS_30 = "7.30"  # RFC 8689 5

_SECODE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")
# Longest reply line including CRLF is 512 octets (RFC 5321 4.5.3.1.5); wrap before.
_MAX_LINE = 510
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply as the server sends it.

    ``secode`` is an enhanced code without its class (``"5.2"``, see the module
    doc) or ``""`` for replies that carry none (greeting, EHLO, 334, 354). ``text``
    may hold several lines separated by ``"\\n"``; it becomes a multi-line reply
    (RFC 5321 4.2.1). Control characters in the text are replaced when encoding, so
    a reply can never inject a line of its own.
    """

    code: int
    secode: str
    text: str

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code out of range: {self.code}")
        if self.secode and not _SECODE.fullmatch(self.secode):
            raise ValueError(f"malformed enhanced code: {self.secode!r}")

    @property
    def enhanced(self) -> str:
        """The full enhanced status code (``"5.5.2"``), or ``""``."""
        return f"{self.code // 100}.{self.secode}" if self.secode else ""

    @property
    def is_positive(self) -> bool:
        """True for 2xx and 3xx replies (RFC 5321 4.2.1)."""
        return self.code < 400

    def lines(self) -> list[str]:
        """The reply as protocol lines without CRLF, long lines wrapped."""
        prefix = f"{self.enhanced} " if self.secode else ""
        texts: list[str] = []
        for raw in self.text.split("\n"):
            line = _UNSAFE.sub(" ", raw)
            room = _MAX_LINE - 4 - len(prefix)
            while len(line.encode()) > room:
                cut = _wrap_at(line, room)
                texts.append(line[:cut])
                line = line[cut:].lstrip(" ")
            texts.append(line)
        out = []
        for i, t in enumerate(texts):
            sep = " " if i == len(texts) - 1 else "-"
            line = f"{self.code}{sep}{prefix}{t}"
            # RFC 4954 4: a challenge is "334" SP base64, the space even when empty.
            out.append(line if self.code == 334 else line.rstrip(" "))
        return out

    def encode(self) -> bytes:
        """The reply as bytes on the wire, every line ending in CRLF."""
        return b"".join(line.encode() + b"\r\n" for line in self.lines())


def _wrap_at(line: str, room: int) -> int:
    """Index at which to break ``line`` so the first part fits ``room`` octets."""
    cut = room
    while cut > 0 and len(line[:cut].encode()) > room:
        cut -= 1
    space = line.rfind(" ", room // 2, cut)
    return space if space > 0 else max(cut, 1)
