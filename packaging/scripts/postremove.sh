#!/bin/sh
# After the files are removed (deb: remove|purge|upgrade|...; rpm: 0 erase,
# 1 upgrade). Removing keeps the data (/var/lib/pillarbox) and the configuration;
# purging (deb only: dpkg --purge, apt purge) deletes them and the system user.
set -e

case "$1" in
purge)
	rm -rf /var/lib/pillarbox /etc/pillarbox
	if getent passwd pillarbox >/dev/null; then
		userdel pillarbox >/dev/null 2>&1 || true
	fi
	if getent group pillarbox >/dev/null; then
		groupdel pillarbox >/dev/null 2>&1 || true
	fi
	;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
