"""A small authoritative DNS server on loopback, for tests and ``--dns`` testing setups.

It runs in its own daemon thread with its own UDP and TCP sockets on an ephemeral
port, so code under test can reach it from any event loop, thread or subprocess.
It answers like a recursive resolver would for the data it holds: CNAME chains in
the answer section, NXDOMAIN vs NODATA (including empty non-terminals), an SOA in
the authority section of negative answers, wildcards (RFC 4592), truncation over UDP
with the full answer over TCP, and the AD bit for names marked authentic. Faults
(no answer, SERVFAIL, REFUSED) can be injected per name.

All public methods are thread-safe. Names are case-insensitive (RFC 4343).
"""

import contextlib
import selectors
import socket
import struct
import textwrap
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

from app.dns.domain import Domain

Fault = Literal["timeout", "servfail", "refused"]

_MAX_CHAIN = 16
_TCP_IDLE = 30.0
_IDNA = dns.name.IDNA_2008_Practical


def _name(name: str | Domain | dns.name.Name) -> dns.name.Name:
    """Absolute name from text (trailing dot optional, U-labels allowed) or a Domain."""
    if isinstance(name, dns.name.Name):
        return name
    if isinstance(name, Domain):
        return dns.name.from_text(name.ascii + ".")
    text = name.strip()
    if not text.endswith("."):
        text += "."
    if text.isascii():
        return dns.name.from_text(text)
    labels = [
        lab
        if lab == "*"
        else dns.name.from_unicode(lab, idna_codec=_IDNA).to_text(omit_final_dot=True)
        for lab in text[:-1].split(".")
    ]
    return dns.name.from_text(".".join(labels) + ".")


def _rdtype(rdtype: str) -> dns.rdatatype.RdataType:
    return dns.rdatatype.from_text(rdtype)


def _txt_value(value: str) -> str:
    """Presentation form of a TXT value given unquoted: one logical string, split into
    255-octet character-strings (RFC 1035 3.3.14, RFC 7208 3.3)."""
    data = value.encode()
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for c in chunks:
        escaped = "".join(
            f"\\{b:03d}" if b < 0x20 or b > 0x7E or b in b'"\\' else chr(b) for b in c
        )
        out.append(f'"{escaped}"')
    return " ".join(out)


@dataclass(slots=True)
class _Result:
    """What to put in a response; mutable while it is being built."""

    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    authentic: bool = True
    fault: Fault | None = None


class LoopbackDNSServer:
    """Authoritative DNS server on ``host`` (127.0.0.1 or ::1), ephemeral port.

    ``negative_ttl`` is the TTL and MINIMUM of the SOA synthesised for negative
    answers when the data has no SOA of its own for the name.
    """

    def __init__(self, host: str = "127.0.0.1", *, negative_ttl: int = 60) -> None:
        self.host = host
        self.negative_ttl = negative_ttl
        self._lock = threading.RLock()
        self._data: dict[dns.name.Name, dict[dns.rdatatype.RdataType, dns.rdataset.Rdataset]] = {}
        self._existing: set[dns.name.Name] | None = None  # names plus ancestors; lazy
        self._authentic: dict[dns.name.Name, bool] = {}
        self._faults: dict[tuple[dns.name.Name, dns.rdatatype.RdataType | None], Fault] = {}
        # Queries received, in order: (lower-case name with trailing dot, type name),
        # e.g. ("example.", "MX"). The live list: tests may read or clear() it.
        self.queries: list[tuple[str, str]] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> "LoopbackDNSServer":
        """Bind UDP and TCP on the same ephemeral port and start serving."""
        if self._thread is not None:
            raise RuntimeError("loopback dns server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(20):  # the UDP port may be taken for TCP; try another
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, 0))
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        else:
            raise OSError("no port free for both udp and tcp")
        tcp.listen(64)
        udp.setblocking(False)
        tcp.setblocking(False)
        self._udp, self._tcp = udp, tcp
        self._wake = socket.socketpair()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="loopback-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close all sockets; waits for the server thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        assert self._wake is not None
        self._wake[1].send(b"x")
        thread.join(5)
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for s in (self._udp, self._tcp, *self._wake):
            if s is not None:
                s.close()
        self._udp = self._tcp = self._wake = None

    def __enter__(self) -> "LoopbackDNSServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port, the same for UDP and TCP."""
        if self._udp is None:
            raise RuntimeError("loopback dns server not started")
        return int(self._udp.getsockname()[1])

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"`` or ``"[::1]:PORT"``, as accepted by the Resolver."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # -- data --------------------------------------------------------------------

    def add(
        self, name: str | Domain, rdtype: str, value: str | Sequence[str], ttl: int = 300
    ) -> None:
        """Add records in presentation format, e.g. ``add("example", "MX", "10 mx.example.")``.

        Names in values are taken relative to the root, so ``mx.example`` equals
        ``mx.example.``. A TXT value that does not start with ``"`` is one string (split
        into 255-octet pieces), so ``add(n, "TXT", "v=spf1 -all")`` works unquoted.
        """
        rt = _rdtype(rdtype)
        owner = _name(name)
        values = [value] if isinstance(value, str) else list(value)
        rdatas = []
        for v in values:
            if rt in (dns.rdatatype.TXT, dns.rdatatype.SPF) and not v.lstrip().startswith('"'):
                v = _txt_value(v)
            rdatas.append(
                dns.rdata.from_text(
                    dns.rdataclass.IN, rt, v, origin=dns.name.root, relativize=False
                )
            )
        with self._lock:
            rds = self._data.setdefault(owner, {}).get(rt)
            if rds is None:
                rds = dns.rdataset.Rdataset(dns.rdataclass.IN, rt)
                self._data[owner][rt] = rds
            for rd in rdatas:
                rds.add(rd, ttl)
            rds.update_ttl(ttl)
            self._existing = None

    def remove(self, name: str | Domain, rdtype: str | None = None) -> None:
        """Remove all records of ``rdtype`` at ``name``, or the whole name."""
        owner = _name(name)
        with self._lock:
            node = self._data.get(owner)
            if node is None:
                return
            if rdtype is None:
                del self._data[owner]
            else:
                node.pop(_rdtype(rdtype), None)
                if not node:
                    del self._data[owner]
            self._existing = None

    def load_zone_text(self, origin: str | Domain, text: str) -> None:
        """Add the records of a zone file (relative names are relative to ``origin``).

        Common indentation is removed first, so a triple-quoted string can be indented
        like the code around it.
        """
        zone = dns.zone.from_text(
            textwrap.dedent(text), origin=_name(origin), relativize=False, check_origin=False
        )
        with self._lock:
            for owner, rds in zone.iterate_rdatasets():
                node = self._data.setdefault(owner, {})
                if rds.rdtype in node:
                    for rd in rds:
                        node[rds.rdtype].add(rd, rds.ttl)
                else:
                    node[rds.rdtype] = rds
            self._existing = None

    def load_dict(
        self, data: Mapping[str, Mapping[str, str | Sequence[str]]], ttl: int = 300
    ) -> None:
        """Add ``{"example.": {"MX": ["10 mx.example."], "TXT": "v=spf1 -all"}}``."""
        for name, types in data.items():
            for rdtype, values in types.items():
                self.add(name, rdtype, values, ttl)

    def clear(self) -> None:
        """Forget all data, authentic marks, faults and recorded queries."""
        with self._lock:
            self._data.clear()
            self._existing = None
            self._authentic.clear()
            self._faults.clear()
            self.queries.clear()

    # -- behaviour knobs -----------------------------------------------------

    def set_authentic(self, name_or_suffix: str | Domain, authentic: bool = True) -> None:
        """Set the AD bit on answers for this name and everything below it.

        The most specific setting wins, so an insecure delegation below a signed zone
        is ``set_authentic("zone.", True); set_authentic("sub.zone.", False)``. A
        response is authentic only when every name in its CNAME chain is.
        """
        with self._lock:
            self._authentic[_name(name_or_suffix)] = authentic

    def timeout(self, name: str | Domain, rdtype: str | None = None) -> None:
        """Never answer queries for ``name`` (of ``rdtype``, or any type)."""
        self._set_fault(name, rdtype, "timeout")

    def servfail(self, name: str | Domain, rdtype: str | None = None) -> None:
        """Answer SERVFAIL for ``name`` (of ``rdtype``, or any type)."""
        self._set_fault(name, rdtype, "servfail")

    def refuse(self, name: str | Domain, rdtype: str | None = None) -> None:
        """Answer REFUSED for ``name`` (of ``rdtype``, or any type)."""
        self._set_fault(name, rdtype, "refused")

    def clear_faults(self, name: str | Domain | None = None) -> None:
        """Remove injected faults for ``name``, or all of them."""
        with self._lock:
            if name is None:
                self._faults.clear()
                return
            owner = _name(name)
            for key in [k for k in self._faults if k[0] == owner]:
                del self._faults[key]

    def _set_fault(self, name: str | Domain, rdtype: str | None, fault: Fault) -> None:
        with self._lock:
            self._faults[(_name(name), None if rdtype is None else _rdtype(rdtype))] = fault

    def clear_queries(self) -> None:
        """Forget the recorded queries."""
        with self._lock:
            self.queries.clear()

    # -- answering (no I/O) -------------------------------------------------------

    def _exists(self, name: dns.name.Name) -> bool:
        if self._existing is None:
            names: set[dns.name.Name] = set()
            for owner in self._data:
                n = owner
                while n not in names and n != dns.name.root:
                    names.add(n)
                    n = n.parent()
            self._existing = names
        return name in self._existing

    def _node(
        self, name: dns.name.Name
    ) -> dict[dns.rdatatype.RdataType, dns.rdataset.Rdataset] | None:
        """The rdatasets at ``name``: its own, or a wildcard's (RFC 4592 3.3.1); None
        when the name does not exist; empty for an empty non-terminal."""
        node = self._data.get(name)
        if node is not None:
            return node
        if self._exists(name):
            return {}
        encloser = name.parent() if name != dns.name.root else name
        while encloser != dns.name.root and not self._exists(encloser):
            encloser = encloser.parent()
        return self._data.get(dns.name.from_text("*", origin=encloser))

    def _fault(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Fault | None:
        return self._faults.get((name, rdtype)) or self._faults.get((name, None))

    def _is_authentic(self, name: dns.name.Name) -> bool:
        n = name
        while True:
            if n in self._authentic:
                return self._authentic[n]
            if n == dns.name.root:
                return False
            n = n.parent()

    def _soa(self, name: dns.name.Name) -> dns.rrset.RRset:
        """SOA for the authority section: the closest enclosing one in the data, or a
        synthetic one for the top-level label (RFC 2308 3)."""
        n = name
        while n != dns.name.root:
            rds = self._data.get(n, {}).get(dns.rdatatype.SOA)
            if rds is not None:
                return dns.rrset.from_rdata_list(n, rds.ttl, list(rds))
            n = n.parent()
        top = name.split(2)[1] if len(name) > 1 else name
        nt = self.negative_ttl
        text = f"ns.loopback. hostmaster.loopback. 1 3600 600 86400 {nt}"
        return dns.rrset.from_text(top, nt, "IN", "SOA", text)

    def _resolve(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> _Result:
        """Answer from the data, following CNAMEs (RFC 1034 4.3.2, simplified)."""
        res = _Result()
        name = qname
        seen: set[dns.name.Name] = set()
        while len(seen) < _MAX_CHAIN:
            seen.add(name)
            res.authentic = res.authentic and self._is_authentic(name)
            res.fault = self._fault(name, qtype)
            if res.fault is not None:
                return res
            node = self._node(name)
            if node is None:
                res.rcode = dns.rcode.NXDOMAIN
                break
            if qtype == dns.rdatatype.ANY and node:
                res.answer += [
                    dns.rrset.from_rdata_list(name, r.ttl, list(r)) for r in node.values()
                ]
                return res
            rds = node.get(qtype)
            if rds is not None:
                res.answer.append(dns.rrset.from_rdata_list(name, rds.ttl, list(rds)))
                return res
            cname = node.get(dns.rdatatype.CNAME)
            if cname is None:
                break  # NODATA
            res.answer.append(dns.rrset.from_rdata_list(name, cname.ttl, list(cname)))
            name = cname[0].target
            if name in seen:
                return res
        res.authority.append(self._soa(name))
        return res

    def respond(self, wire: bytes, tcp: bool) -> bytes | None:
        """Handle one query message; the response in wire format, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            if len(wire) < 12:
                return None
            # FORMERR echoing the ID, QR set, no sections (RFC 1035 4.1.1).
            return wire[:2] + struct.pack("!HHHHH", 0x8001, 0, 0, 0, 0)
        response = dns.message.make_response(query, our_payload=4096)
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            response.set_rcode(dns.rcode.NOTIMP)
            return response.to_wire()
        q = query.question[0]
        with self._lock:
            self.queries.append((q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)))
            res = self._resolve(q.name, q.rdtype)
        if res.fault == "timeout":
            return None
        response.flags |= dns.flags.AA | dns.flags.RA
        if res.fault is not None:
            response.set_rcode(dns.rcode.SERVFAIL if res.fault == "servfail" else dns.rcode.REFUSED)
            return response.to_wire()
        response.set_rcode(res.rcode)
        response.answer = res.answer
        response.authority = res.authority
        # RFC 4035 3.2.3 / RFC 6840 5.7: AD only for clients that signal understanding.
        wants_ad = bool(query.flags & dns.flags.AD) or bool(query.ednsflags & dns.flags.DO)
        if res.authentic and wants_ad:
            response.flags |= dns.flags.AD
        return self._to_wire(query, response, tcp)

    @staticmethod
    def _to_wire(query: dns.message.Message, response: dns.message.Message, tcp: bool) -> bytes:
        # RFC 1035 4.2.1 / RFC 6891 6.2.5: UDP payload is 512 or the EDNS size given.
        limit = 65535 if tcp else max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            # RFC 2181 9: set TC; the client retries over TCP for the whole answer.
            response.answer = []
            response.authority = []
            response.additional = []
            response.flags |= dns.flags.TC
            return response.to_wire()

    # -- I/O -----------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._udp is not None and self._tcp is not None and self._wake is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._udp, selectors.EVENT_READ, "udp")
            sel.register(self._tcp, selectors.EVENT_READ, "tcp")
            sel.register(self._wake[0], selectors.EVENT_READ, "wake")
            while not self._stopping.is_set():
                for key, _ in sel.select():
                    if key.data == "udp":
                        self._serve_udp()
                    elif key.data == "tcp":
                        self._accept()

    def _serve_udp(self) -> None:
        assert self._udp is not None
        for _ in range(64):  # drain what is queued, then go back to select
            try:
                wire, peer = self._udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. ICMP port unreachable reported on Linux
            out = self._respond_safely(wire, tcp=False)
            if out is not None:
                with contextlib.suppress(OSError):
                    self._udp.sendto(out, peer)

    def _respond_safely(self, wire: bytes, tcp: bool) -> bytes | None:
        try:
            return self.respond(wire, tcp)
        except Exception:  # a bug here must not kill the server thread; answer SERVFAIL
            if len(wire) < 12:
                return None
            return wire[:2] + struct.pack("!HHHHH", 0x8082, 0, 0, 0, 0)

    def _accept(self) -> None:
        assert self._tcp is not None
        try:
            conn, _ = self._tcp.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(True)
        conn.settimeout(_TCP_IDLE)
        with self._lock:
            self._conns.add(conn)
        threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()

    def _serve_tcp(self, conn: socket.socket) -> None:
        """RFC 7766: length-prefixed messages, several per connection."""
        try:
            for wire in self._tcp_messages(conn):
                out = self._respond_safely(wire, tcp=True)
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _tcp_messages(self, conn: socket.socket) -> Iterator[bytes]:
        while not self._stopping.is_set():
            head = _recv_exact(conn, 2)
            if head is None:
                return
            body = _recv_exact(conn, struct.unpack("!H", head)[0])
            if body is None:
                return
            yield body


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
