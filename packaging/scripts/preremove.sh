#!/bin/sh
# Before the files are removed (deb: remove|upgrade|deconfigure|failed-upgrade;
# rpm: 0 erase, 1 upgrade). On removal the server stops; on upgrade it keeps running
# until postinstall restarts it with the new files.
set -e

case "$1" in
remove | deconfigure | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now pillarbox.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
