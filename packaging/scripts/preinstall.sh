#!/bin/sh
# Before the files are unpacked (deb: install|upgrade; rpm: 1 install, 2 upgrade):
# the system user and group the server runs as.
set -e

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin

if ! getent group pillarbox >/dev/null; then
	groupadd --system pillarbox
fi
if ! getent passwd pillarbox >/dev/null; then
	useradd --system --gid pillarbox --home-dir /var/lib/pillarbox --no-create-home \
		--shell "$nologin" --comment "Pillarbox mail server" pillarbox
fi
exit 0
