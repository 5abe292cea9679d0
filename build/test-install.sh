#!/bin/sh
# make test-install: the .deb in a fresh, minimal Debian 12 (bookworm), and the .rpm's
# metadata.
#
# Builds the one-directory executable once and packages it twice (release 1, and
# release 2 as the upgrade), bootstraps a minimal bookworm (debootstrap minbase,
# no Python) into build/work/test-install/root, and checks in a chroot:
#   install   files, modes and owners, the system user, `pillarbox selftest` as that
#             user, a domain and account created in /var/lib/pillarbox
#   upgrade   an edited /etc/pillarbox/pillarbox.toml and the data are kept, the new
#             files are in place, selftest still passes
#   remove    the program is gone, configuration and data stay
#   purge     configuration, data and user are gone
# and lists the .rpm's files, scripts and dependencies (rpm -qip/-qlp).
#
# Needs root and the Debian packages debootstrap and rpm. The bootstrapped system is
# cached as build/work/test-install/bookworm-ARCH.tar (delete it to bootstrap anew);
# the chroot is unmounted and removed on exit, whatever happens.
# Prints one line per check and closes with "N passed, N failed".
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/build/work/test-install
CHROOT=$WORK/root
ARCH=$(dpkg --print-architecture)
BASE=$WORK/bookworm-$ARCH.tar
passed=0
failed=0

say() { printf '%s\n' "$*"; }

ok() {
	# ok DESCRIPTION COMMAND...: one check, run on the host.
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		passed=$((passed + 1))
		say "ok    $desc"
	else
		failed=$((failed + 1))
		say "FAIL  $desc"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/      /'
	fi
}

in_root() { chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"; }
as_user() { chroot --userspec=pillarbox:pillarbox "$CHROOT" /usr/bin/env -i \
	PATH=/usr/bin:/bin HOME=/var/lib/pillarbox LANG=C.UTF-8 "$@"; }

mounted() { grep -q " $CHROOT/" /proc/mounts; }

cleanup() {
	for m in dev proc; do
		if grep -q " $CHROOT/$m " /proc/mounts; then
			umount "$CHROOT/$m" 2>/dev/null || umount -l "$CHROOT/$m"
		fi
	done
	if mounted; then
		say "test-install: something is still mounted under $CHROOT; not removing it" >&2
		return
	fi
	rm -rf --one-file-system "$CHROOT"
}

# The Debian mirror this machine's apt uses (debootstrap's own default otherwise).
mirror() {
	if [ -n "${DEBIAN_MIRROR:-}" ]; then
		say "$DEBIAN_MIRROR"
		return
	fi
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$f" && return
	done
	awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true
}

bootstrap() {
	if [ -f "$BASE" ]; then
		mkdir -p "$CHROOT"
		tar -C "$CHROOT" -xf "$BASE"
		return
	fi
	say "test-install: bootstrapping Debian 12 ($ARCH) ..."
	debootstrap --variant=minbase --arch="$ARCH" bookworm "$CHROOT" $(mirror) \
		>"$WORK/debootstrap.log" 2>&1 || {
		tail -n 30 "$WORK/debootstrap.log" >&2
		exit 1
	}
	in_root apt-get clean
	tar -C "$CHROOT" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
}

packages() {
	PILLARBOX_SMOKE=version sh "$ROOT/build/build.sh" onedir >"$WORK/build.log" 2>&1 || {
		tail -n 30 "$WORK/build.log" >&2
		exit 1
	}
	for rel in 1 2; do
		PILLARBOX_SKIP_BUILD=1 PILLARBOX_RELEASE=$rel PILLARBOX_PKG_DIR=$WORK/pkg$rel \
			sh "$ROOT/build/package.sh" both >>"$WORK/build.log" 2>&1
	done
}

# Checks that run inside the chroot.
# Inside the chroot: the host does not know the chroot's users.
mode_owner() { [ "$(in_root stat -c '%a %U:%G' "$1")" = "$2" ]; }
is_symlink_to() { [ "$(readlink "$CHROOT$1")" = "$2" ]; }
no_python() { ! in_root sh -c 'command -v python3 || command -v python || ls /usr/lib/python3*'; }
system_user() {
	line=$(in_root getent passwd pillarbox) &&
		uid=$(printf '%s' "$line" | cut -d: -f3) && [ "$uid" -lt 1000 ] &&
		printf '%s' "$line" | grep -q ':/var/lib/pillarbox:/usr/sbin/nologin$'
}
no_user() { ! in_root getent passwd pillarbox && ! in_root getent group pillarbox; }
installed_version() { [ "$(in_root dpkg-query -W -f '${Version}' pillarbox)" = "$1" ]; }
not_installed() { ! in_root dpkg-query -W -f '${Status}' pillarbox 2>/dev/null | grep -q installed; }
has_domain() { as_user pillarbox config domain list | grep -qx "$1.*"; }
config_has() { grep -q "$1" "$CHROOT/etc/pillarbox/pillarbox.toml"; }
build_info() { grep -q "$1" "$CHROOT/usr/lib/pillarbox/BUILD-INFO"; }
selftest() { "$@" pillarbox selftest; }
apt_install() { in_root apt-get install -y -q -o Dpkg::Options::=--force-confdef \
	-o Dpkg::Options::=--force-confold "$1" </dev/null; }

check_install() {
	deb=$(cd "$WORK/pkg1" && ls pillarbox_*.deb)
	cp "$WORK/pkg1/$deb" "$CHROOT/tmp/"
	ok "apt-get update in the chroot" in_root apt-get update -q
	ok "minimal Debian 12 without Python" no_python
	ok "apt-get install ./$deb (dependencies from the mirror)" apt_install "/tmp/$deb"
	ok "installed version ${VERSION}-1" installed_version "${VERSION}-1"
	ok "/usr/bin/pillarbox links to /usr/lib/pillarbox/pillarbox" \
		is_symlink_to /usr/bin/pillarbox /usr/lib/pillarbox/pillarbox
	ok "unit file /usr/lib/systemd/system/pillarbox.service" \
		test -f "$CHROOT/usr/lib/systemd/system/pillarbox.service"
	ok "/etc/pillarbox/pillarbox.toml is a conffile" \
		grep -qx /etc/pillarbox/pillarbox.toml "$CHROOT/var/lib/dpkg/info/pillarbox.conffiles"
	ok "/etc/pillarbox/pillarbox.toml is 640 root:pillarbox" \
		mode_owner /etc/pillarbox/pillarbox.toml "640 root:pillarbox"
	ok "/var/lib/pillarbox is 750 pillarbox:pillarbox" mode_owner /var/lib/pillarbox "750 pillarbox:pillarbox"
	ok "system user pillarbox (home /var/lib/pillarbox, nologin)" system_user
	ok "pillarbox version" in_root pillarbox version
	ok "the shipped configuration is valid" as_user pillarbox config test /etc/pillarbox/pillarbox.toml
	ok "pillarbox selftest as user pillarbox" selftest as_user
	ok "a domain and account created in /var/lib/pillarbox" sh -c \
		"$(command -v chroot) --userspec=pillarbox:pillarbox '$CHROOT' pillarbox config domain add example.org &&
		 echo secret-password | $(command -v chroot) --userspec=pillarbox:pillarbox '$CHROOT' \
			pillarbox config account add you you@example.org --password-stdin"
	ok "data is owned by pillarbox" sh -c \
		"$(command -v chroot) '$CHROOT' stat -c %U:%G /var/lib/pillarbox/admin.db | grep -qx pillarbox:pillarbox"
	sed -i 's/^profile = "default"/profile = "lowmem"  # edited by test-install/' \
		"$CHROOT/etc/pillarbox/pillarbox.toml"
}

check_upgrade() {
	deb=$(cd "$WORK/pkg2" && ls pillarbox_*.deb)
	cp "$WORK/pkg2/$deb" "$CHROOT/tmp/"
	ok "upgrade: apt-get install ./$deb" apt_install "/tmp/$deb"
	ok "upgrade: installed version ${VERSION}-2" installed_version "${VERSION}-2"
	ok "upgrade: new program files in place" build_info "${VERSION}-2"
	ok "upgrade: the edited configuration is kept" config_has "edited by test-install"
	ok "upgrade: no .dpkg-new/.dpkg-dist left beside it" sh -c \
		"! ls '$CHROOT'/etc/pillarbox/*.dpkg-* 2>/dev/null"
	ok "upgrade: the data is kept (domain example.org)" has_domain example.org
	ok "upgrade: pillarbox selftest as user pillarbox" selftest as_user
}

check_remove_purge() {
	ok "remove: apt-get remove pillarbox" in_root apt-get remove -y -q pillarbox
	ok "remove: the program is gone" sh -c "! test -e '$CHROOT/usr/lib/pillarbox/pillarbox' &&
		! test -L '$CHROOT/usr/bin/pillarbox'"
	ok "remove: configuration kept" config_has "edited by test-install"
	ok "remove: data kept" test -f "$CHROOT/var/lib/pillarbox/admin.db"
	ok "purge: apt-get purge pillarbox" in_root apt-get purge -y -q pillarbox
	ok "purge: package gone" not_installed
	ok "purge: /var/lib/pillarbox and /etc/pillarbox gone" sh -c \
		"! test -e '$CHROOT/var/lib/pillarbox' && ! test -e '$CHROOT/etc/pillarbox'"
	ok "purge: user and group gone" no_user
}

check_rpm() {
	rpm=$(ls "$WORK"/pkg1/pillarbox-*.rpm)
	q="$WORK/rpm"
	rpm -qip "$rpm" >"$q.info" 2>/dev/null
	rpm -qlp "$rpm" >"$q.files" 2>/dev/null
	rpm -qp --scripts "$rpm" >"$q.scripts" 2>/dev/null
	rpm -qp --requires "$rpm" 2>/dev/null | grep -v '^rpmlib(' | sort >"$q.requires"
	rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm" >"$q.flags" 2>/dev/null
	ok "rpm: name pillarbox, version $VERSION, licence MIT" sh -c \
		"grep -q '^Name *: pillarbox' '$q.info' && grep -q '^Version *: $VERSION' '$q.info' &&
		 grep -q '^License *: MIT' '$q.info'"
	for f in /usr/bin/pillarbox /usr/lib/pillarbox/pillarbox /usr/lib/systemd/system/pillarbox.service \
		/etc/pillarbox/pillarbox.toml /var/lib/pillarbox /usr/share/pillarbox/lowmem.conf; do
		ok "rpm: contains $f" grep -qx "$f" "$q.files"
	done
	ok "rpm: /etc/pillarbox/pillarbox.toml is %config(noreplace)" \
		grep -qx '/etc/pillarbox/pillarbox.toml cn' "$q.flags"
	ok "rpm: scripts create the user; erase keeps the data" sh -c \
		"grep -q 'useradd --system' '$q.scripts' && grep -q '^postuninstall scriptlet' '$q.scripts' &&
		 ! grep -q '^0)' '$q.scripts'"
	ok "rpm: requires only glibc and shadow-utils" sh -c \
		"[ \"\$(cut -d' ' -f1 '$q.requires' | tr '\n' ' ')\" = 'glibc shadow-utils ' ]"
}

[ "$(id -u)" = 0 ] || { say "test-install: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
for tool in debootstrap rpm chroot; do
	command -v "$tool" >/dev/null || { say "test-install: needs $tool (apt-get install debootstrap rpm)" >&2; exit 1; }
done
mkdir -p "$WORK"
cleanup
trap cleanup EXIT
trap 'exit 130' INT TERM

VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/app/__init__.py")
say "test-install: building the packages ..."
rm -rf "$WORK/pkg1" "$WORK/pkg2"
packages
bootstrap
mount -t proc proc "$CHROOT/proc"
mount --bind /dev "$CHROOT/dev"
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true

check_install
check_upgrade
check_remove_purge
check_rpm

say "test-install: $passed passed, $failed failed"
[ "$failed" = 0 ]
