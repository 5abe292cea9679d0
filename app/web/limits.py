"""Size limits and timeouts of the HTTP server, apart from the server code so that a
listener can be opened before that code loads (see :mod:`app.listening`)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits and timeouts of one HTTP server."""

    max_request_line: int = 8 * 1024
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    max_body: int = 1024 * 1024
    read_timeout: float = 30.0
    idle_timeout: float = 60.0
    write_timeout: float = 60.0
    handler_timeout: float = 60.0
    tls_handshake_timeout: float = 15.0
