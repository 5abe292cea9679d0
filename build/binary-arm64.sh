#!/bin/sh
# make binary-arm64: dist/arm64/pillarbox, the one-file executable for aarch64
# (Raspberry Pi 3/4/5 and other 64-bit ARM boards with a 64-bit OS).
#
# PyInstaller does not cross-build, so the build runs natively in a Debian 12 arm64
# chroot under qemu-user (binfmt_misc). The chroot is kept in build/work/arm64/root
# for later builds (first run ~3 min bootstrap, each build ~1-2 min); delete that
# directory to start afresh. The result is smoke-tested under qemu (`version`,
# `selftest`) by build/build.sh.
#
# Needs root and the Debian packages qemu-user-static binfmt-support debootstrap.
# Not part of CI.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/build/work/arm64
CHROOT=$WORK/root
OUT=$ROOT/dist/arm64

[ "$(id -u)" = 0 ] || { echo "binary-arm64: needs root" >&2; exit 1; }
for tool in debootstrap update-binfmts chroot; do
	command -v "$tool" >/dev/null || {
		echo "binary-arm64: needs $tool (apt-get install qemu-user-static binfmt-support debootstrap)" >&2
		exit 1
	}
done

# aarch64 executables must run through qemu: binfmt_misc with the F flag, so the
# interpreter also works inside the chroot.
if [ "$(uname -m)" != aarch64 ]; then
	[ -e /proc/sys/fs/binfmt_misc/register ] ||
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
fi

mirror() {
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$f" && return
	done
	awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true
}

umount_all() {
	for m in src dev proc; do
		if grep -q " $CHROOT/$m " /proc/mounts; then
			umount "$CHROOT/$m" 2>/dev/null || umount -l "$CHROOT/$m"
		fi
	done
}
trap umount_all EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK" "$OUT"
if [ ! -x "$CHROOT/usr/bin/python3" ]; then
	rm -rf --one-file-system "$CHROOT"
	echo "binary-arm64: bootstrapping Debian 12 arm64 (a few minutes under qemu) ..."
	# Python, venv, and binutils (PyInstaller reads and strips ELF files with them).
	debootstrap --variant=minbase --arch=arm64 \
		--include=python3,python3-venv,python3-dev,binutils,ca-certificates \
		bookworm "$CHROOT" $(mirror) >"$WORK/debootstrap.log" 2>&1 || {
		tail -n 30 "$WORK/debootstrap.log" >&2
		exit 1
	}
fi

mount -t proc proc "$CHROOT/proc"
mount --bind /dev "$CHROOT/dev"
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
# pip inside reaches PyPI the way it does here: same pip.conf, and this machine's CA
# bundle (a superset of Debian's; it may hold a proxy's CA).
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$CHROOT/etc/pip.conf"
[ -f /etc/ssl/certs/ca-certificates.crt ] &&
	cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/etc/ssl/certs/ca-certificates.crt"

# The sources, read-only; build outputs go to /work inside the chroot.
mkdir -p "$CHROOT/src" "$CHROOT/work"
mount --bind "$ROOT" "$CHROOT/src"
mount -o remount,bind,ro "$CHROOT/src"

# A copy with timestamps kept (build.sh reinstalls its venv when pyproject.toml is
# newer than the venv); the venv stays in /work/build between runs.
chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
	sh -c 'set -e; rm -rf /work/src; mkdir -p /work/src; cd /src
		mkdir -p /work/src/build
		cp -a app pyproject.toml /work/src/
		cp -a build/*.sh build/*.py build/*.spec build/requirements.txt /work/src/build/
		cd /work/src
		PYTHON=python3 PILLARBOX_BUILD_WORK=/work/build sh build/build.sh onefile'

cp "$CHROOT/work/src/dist/pillarbox" "$OUT/pillarbox"
echo "binary-arm64: $OUT/pillarbox ($(od -An -tx2 -j18 -N2 "$OUT/pillarbox" | tr -d ' ' |
	sed 's/00b7/aarch64/'), $(stat -c %s "$OUT/pillarbox") bytes)"
