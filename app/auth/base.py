"""Types shared by every module of :mod:`app.auth`: the package exception and channel binding.

Kept free of imports from the rest of the package so that the protocol cores
(:mod:`app.auth.scram`, :mod:`app.auth.sasl`) and the TLS glue
(:mod:`app.auth.channelbinding`) can all depend on it without cycles.
"""

from dataclasses import dataclass


class AuthError(Exception):
    """The one exception raised by :mod:`app.auth`.

    Attributes:
        kind: short machine-readable classification, e.g. ``"saslprep"``,
            ``"syntax"``, ``"credentials-format"``, ``"scram"``.
        detail: human-readable explanation for logs. Never contains a secret and is
            not meant to be sent to a client verbatim.
        scram_error: for SCRAM protocol failures, the RFC 5802 §7 ``server-error-value``
            (``"invalid-proof"``, ``"channel-bindings-dont-match"``...), else ``None``.
        user_error: True when the peer (client or user) is at fault, False for a
            server-side problem.
    """

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        scram_error: str | None = None,
        user_error: bool = True,
    ) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.scram_error = scram_error
        self.user_error = user_error


@dataclass(frozen=True, slots=True)
class ChannelBinding:
    """Channel-binding data of one TLS connection (RFC 5056).

    ``type`` is ``"tls-unique"`` (RFC 5929, TLS <= 1.2 only) or ``"tls-exporter"``
    (RFC 9266, TLS 1.3). ``data`` is the binding value itself.
    """

    type: str
    data: bytes

    def __repr__(self) -> str:
        # The value is not a secret, but it is noise in logs.
        return f"ChannelBinding(type={self.type!r}, data=<{len(self.data)} bytes>)"


TLS_UNIQUE = "tls-unique"
TLS_EXPORTER = "tls-exporter"
