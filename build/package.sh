#!/bin/sh
# Build the .deb and/or .rpm from one description (packaging/nfpm.yaml).
#
#   build/package.sh deb|rpm|both
#
# Builds the one-directory executable first (build/build.sh onedir) unless
# PILLARBOX_SKIP_BUILD=1 (then dist/onedir/pillarbox must exist, e.g. from the arm64
# build). Packages land in dist/ (or $PILLARBOX_PKG_DIR). PILLARBOX_VERSION and
# PILLARBOX_RELEASE override the version (app/__init__.py) and release (1).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
what=${1:-deb}
[ "$what" = both ] && what="deb rpm"

[ -n "${PILLARBOX_SKIP_BUILD:-}" ] || sh build/build.sh onedir
sh build/build.sh venv >/dev/null
NFPM=${PILLARBOX_BUILD_WORK:-$ROOT/build/work}/venv/bin/nfpm
TREE=dist/onedir/pillarbox
EXE=$TREE/pillarbox
[ -x "$EXE" ] || { echo "package: no $EXE; run build/build.sh onedir" >&2; exit 1; }

PILLARBOX_VERSION=${PILLARBOX_VERSION:-$(sed -n 's/^__version__ = "\(.*\)"/\1/p' app/__init__.py)}
PILLARBOX_RELEASE=${PILLARBOX_RELEASE:-1}
# The architecture is the executable's (ELF e_machine at offset 18), not this machine's.
case $(od -An -tx2 -j18 -N2 "$EXE" | tr -d ' ') in
003e) PILLARBOX_ARCH=amd64 ;;
00b7) PILLARBOX_ARCH=arm64 ;;
*) echo "package: unknown architecture of $EXE" >&2 && exit 1 ;;
esac
# The newest glibc symbol version any bundled file needs is the package's dependency.
PILLARBOX_GLIBC=$(find "$TREE" -type f \( -name '*.so*' -o -name pillarbox \) -exec objdump -T {} + 2>/dev/null |
	grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
export PILLARBOX_VERSION PILLARBOX_RELEASE PILLARBOX_ARCH PILLARBOX_GLIBC

printf 'pillarbox %s-%s %s, built %s\n' "$PILLARBOX_VERSION" "$PILLARBOX_RELEASE" \
	"$PILLARBOX_ARCH" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$TREE/BUILD-INFO"

out=${PILLARBOX_PKG_DIR:-$ROOT/dist}
mkdir -p "$out"
for fmt in $what; do
	"$NFPM" package --config packaging/nfpm.yaml --packager "$fmt" --target "$out/"
done
