"""LOGIN and AUTHENTICATE (RFC 9051 6.2.2, 6.2.3; SASL-IR RFC 4959).

User names are email addresses of an account (``local@domain``, compared as the
dynamic settings say: :meth:`~app.config.dynamic.Dynamic.canonical`) or account
names. Plaintext passwords (LOGIN, AUTHENTICATE PLAIN) need TLS, as in mox;
SCRAM and CRAM-MD5 do not reveal the password and also work without it.

Failures count against the client's IP classes (:class:`FailedAuthLimiter`), get
a growing delay on the same connection (:func:`delay_for`) and one log line each
(:func:`log_auth_failure`); the client only ever sees ``[AUTHENTICATIONFAILED]``.
"""

import asyncio
import base64

from app.auth.credentials import Credentials, check_password
from app.auth.ratelimit import delay_for, log_auth_failure
from app.auth.sasl import (
    PLAIN,
    Challenge,
    Event,
    Failure,
    NeedCredentials,
    ServerMechanism,
    Success,
    new_server_mechanism,
)
from app.imap import protocol as p
from app.imap.commands import Authenticate, Login
from app.imap.errors import IMAPBad, IMAPNo
from app.imap.session import Reply, Session

FAILED = "AUTHENTICATIONFAILED"


def resolve_account(s: Session, username: str) -> str | None:
    """The account a login name stands for, or None (no catch-all, no aliases)."""
    return s.services.dynamic.account_for_login(username)


async def load_credentials(s: Session, account: str | None) -> Credentials | None:
    """The stored credentials of ``account``; None when unknown or unusable."""
    return await s.services.credentials(account)


async def _before_attempt(s: Session) -> None:
    if not s.services.auth_limiter.allowed(s.remote_ip):
        s.services.metrics.auth_attempts.inc(protocol="imap", result="ratelimited")
        raise IMAPNo("too many authentication failures, try again later", "UNAVAILABLE")
    delay = delay_for(s.auth_failures)
    if delay:
        await asyncio.sleep(delay)  # rate limiting, as mox: slows down password guessing


def _failed(s: Session, mechanism: str, username: str, reason: str) -> IMAPNo:
    s.auth_failures += 1
    s.services.auth_limiter.record_failure(s.remote_ip)
    s.services.metrics.auth_attempts.inc(protocol="imap", result="badcreds")
    log_auth_failure(
        s.log,
        protocol="imap",
        mechanism=mechanism,
        username=username,
        remote_ip=s.remote_ip,
        reason=reason,
    )
    return IMAPNo("authentication failed", FAILED)


async def _succeeded(s: Session, account: str, mechanism: str) -> Reply:
    s.services.auth_limiter.reset(s.remote_ip)
    s.services.metrics.auth_attempts.inc(protocol="imap", result="ok")
    store = await s.services.accounts.get(account)
    s.authenticated(account, store)
    s.log.info("authenticated", extra={"account": account, "mechanism": mechanism})
    return Reply("authenticated", p.capability_code(s.capabilities()))


async def login(s: Session, cmd: Login) -> Reply:
    """LOGIN: RFC 9051 6.2.3; refused without TLS (LOGINDISABLED)."""
    if not s.plaintext_auth:
        raise IMAPNo("login requires TLS", "PRIVACYREQUIRED")
    await _before_attempt(s)
    account = resolve_account(s, cmd.username)
    creds = await load_credentials(s, account)
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(s.services.cpu_executor, check_password, creds, cmd.password)
    if account is None or not ok:
        raise _failed(s, "LOGIN", cmd.username, "unknown user" if creds is None else "bad password")
    return await _succeeded(s, account, "LOGIN")


async def authenticate(s: Session, cmd: Authenticate) -> Reply:
    """AUTHENTICATE with SASL-IR; -PLUS only with channel binding on this connection."""
    name = cmd.mechanism.upper()
    offered = s.mechanisms() + ([PLAIN] if s.plaintext_auth else [])
    if name not in offered:
        if name == PLAIN:
            raise IMAPNo("plaintext authentication requires TLS", "PRIVACYREQUIRED")
        raise IMAPNo("mechanism not supported", "CANNOT")
    await _before_attempt(s)
    mech = new_server_mechanism(
        name, channel_binding=s.channel_binding, hostname=s.services.config.hostname
    )
    initial = None
    if cmd.initial_response is not None:
        initial = base64.b64encode(cmd.initial_response) if cmd.initial_response else b"="
    ev = mech.start(initial)
    account: str | None = None
    while True:
        if isinstance(ev, Challenge):
            ev = mech.step(await _client_line(s, ev.data))
        elif isinstance(ev, NeedCredentials):
            account = resolve_account(s, ev.username)
            ev = await _with_credentials(s, mech, await load_credentials(s, account))
        elif isinstance(ev, Success):
            if ev.final:
                await _client_line(s, ev.final)  # RFC 5802 server-final; reply is empty
            if account is None:
                raise _failed(s, name, ev.username, "unknown user")
            return await _succeeded(s, account, name)
        else:
            raise _failure(s, name, ev)


async def _client_line(s: Session, challenge: bytes) -> bytes:
    line = await s.io.sasl_exchange(challenge)
    if line.cancelled:
        raise IMAPBad("authentication cancelled")  # RFC 9051 6.2.2
    return line.data


async def _with_credentials(s: Session, mech: ServerMechanism, creds: Credentials | None) -> Event:
    if mech.expensive_verify:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(s.services.cpu_executor, mech.credentials, creds)
    return mech.credentials(creds)


def _failure(s: Session, name: str, ev: Failure) -> IMAPNo:
    if not ev.user_error:
        s.log.error("authentication error", extra={"mechanism": name, "reason": ev.reason})
    return _failed(s, name, ev.username, ev.reason)
