"""What every private Postfix instance in the tests and benchmarks shares.

An instance lives in a directory we own: ``etc/`` (main.cf, master.cf), ``queue/``,
``data/``, ``vmail/``; it is started with ``postfix -c DIR/etc start`` (no postmulti,
no chroot), listens with smtpd on one port of 127.0.0.1 only and does no DNS lookups.
Each user adds its own settings (TLS, delivery maps, limits) to :func:`main_cf`.
"""

import subprocess
from pathlib import Path

# master.cf without the smtpd line, which :func:`master_cf` puts first.
_MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def master_cf(port: int) -> str:
    """master.cf: smtpd on 127.0.0.1:``port``, the usual services, nothing chrooted."""
    return f"127.0.0.1:{port} inet n - n - - smtpd\n" + _MASTER_SERVICES


def main_cf(directory: Path, domain: str, extra: str) -> str:
    """main.cf for an instance in ``directory`` accepting mail for ``domain`` through
    virtual(8), with the lines of ``extra`` (delivery maps, TLS, limits) added."""
    d = directory
    return f"""\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = peer.localhost
mydomain = localhost
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {d}/vmail
{extra}"""


def run(binary: str, conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``postfix -c CONF ARGS...`` (bounded)."""
    return subprocess.run(
        [binary, "-c", str(conf), *args], capture_output=True, text=True, timeout=60
    )
