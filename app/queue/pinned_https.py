"""An HTTPS connection to a chosen IP address that checks the certificate for a host
name: MTA-STS fetches connect to the address our resolver found (RFC 8461 3.3)."""

import http.client
import socket
import ssl


class PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a given IP, with SNI and certificate checks for the host name."""

    def __init__(
        self, host: str, ip: str, port: int, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._ip = ip
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        try:
            self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
