"""A private Dovecot instance for ``make bench-peers``: its own configuration, base and
state directories and Maildir under a directory we own, IMAP over implicit TLS on a free
loopback port, one passwd-file user. Fsync settings are Dovecot's defaults.

IMAP over implicit TLS (imaps) on both sides of the comparison: Pillarbox refuses
plaintext LOGIN without TLS (LOGINDISABLED), so Dovecot pays for TLS too.
"""

import os
import subprocess
from pathlib import Path

from tests.bench.peer_common import free_port, log, tree_cpu_seconds, wait_port, which

NOBODY = 65534  # mail files belong to nobody:nogroup; Dovecot refuses uid 0


class Dovecot:
    def __init__(self, directory: Path, user: str, password: str, cert: Path, key: Path) -> None:
        self.dir = directory
        self.user = user
        self.password = password
        self.cert = cert
        self.key = key
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = directory / "dovecot.conf"
        self.binary = which("dovecot") or "dovecot"

    def version(self) -> str:
        r = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True)
        return r.stdout.strip()

    def _config(self) -> str:
        d = self.dir
        v = self.version()
        common = f"""
base_dir = {d}/run
state_dir = {d}/state
instance_name = pillarbox-bench-dovecot
protocols = imap
listen = 127.0.0.1
log_path = {d}/dovecot.log
ssl = required
auth_mechanisms = plain login
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
"""
        if v.startswith("2.3") or v.startswith("2.2"):
            return (
                common
                + f"""
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = yes
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
"""
            )
        # Dovecot 2.4 renamed most settings.
        return (
            "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n"
            + common
            + f"""
ssl_server_cert_file = {self.cert}
ssl_server_key_file = {self.key}
auth_allow_cleartext = no
mail_driver = maildir
mail_path = {d}/mail/%{{user}}
passdb passwd-file {{
  passwd_file_path = {d}/users
  default_password_scheme = PLAIN
}}
userdb passwd-file {{
  passwd_file_path = {d}/users
}}
"""
        )

    def start(self) -> None:
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)  # the unprivileged login and mail processes must traverse it
        for sub in ("run", "state", "mail", "home"):
            (d / sub).mkdir(exist_ok=True)
        os.chown(d / "mail", NOBODY, NOBODY)
        os.chown(d / "home", NOBODY, NOBODY)
        (d / "users").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{NOBODY}:{NOBODY}::{d}/home::\n"
        )
        self.conf.write_text(self._config())
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            log("dovecot did not start:\n" + self.log_tail())
            raise
        log(f"{self.version()} listening on 127.0.0.1:{self.port}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def log_tail(self, n: int = 20) -> str:
        p = self.dir / "dovecot.log"
        return "\n".join(p.read_text().splitlines()[-n:]) if p.exists() else "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
