#!/bin/sh
# After unpacking (deb: configure OLD-VERSION, OLD-VERSION empty on a first install;
# rpm: 1 install, 2 upgrade). The data directory belongs to the server's user; the
# configuration is readable by it. A first install does not start the server: it
# needs a host name and a domain first. An upgrade restarts a running server.
set -e

case "$1" in
configure) old=$2 ;;
1) old= ;;
[2-9]*) old=upgrade ;;
*) exit 0 ;;
esac

install -d -o pillarbox -g pillarbox -m 0750 /var/lib/pillarbox
if [ -z "$old" ] && [ -f /etc/pillarbox/pillarbox.toml ]; then
	chown root:pillarbox /etc/pillarbox/pillarbox.toml
	chmod 0640 /etc/pillarbox/pillarbox.toml
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ -n "$old" ]; then
		systemctl try-restart pillarbox.service >/dev/null 2>&1 || true
	fi
fi

if [ -z "$old" ]; then
	cat <<'MSG'
pillarbox installed. Next: set hostname in /etc/pillarbox/pillarbox.toml, add a
domain and an account (pillarbox config domain add ...; pillarbox config account
add ...), then: systemctl enable --now pillarbox
MSG
fi
exit 0
