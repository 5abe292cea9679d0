#!/bin/sh
# Build the pillarbox executable with PyInstaller.
#
#   build/build.sh onefile   -> dist/pillarbox            (one file, for download)
#   build/build.sh onedir    -> dist/onedir/pillarbox/    (for the .deb/.rpm)
#   build/build.sh both
#
# A build venv (build/work/venv) holds PyInstaller, nfpm and the runtime
# dependencies from pyproject.toml, nothing from the dev extras, so the executable
# carries only what the server uses. The application itself comes from the source
# tree. Each build ends with a smoke test of the result (`version`, `selftest`).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${PILLARBOX_BUILD_WORK:-$ROOT/build/work}
VENV=$WORK/venv
PY=${PYTHON:-python3}
what=${1:-onefile}

venv() {
	stamp=$VENV/.pillarbox-stamp
	if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/pyproject.toml" ] &&
		[ "$stamp" -nt "$ROOT/build/requirements.txt" ]; then
		return
	fi
	test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
	"$VENV/bin/python" -m pip install --quiet --upgrade pip
	"$VENV/bin/python" -m pip install --quiet -r "$ROOT/build/requirements.txt"
	# Runtime dependencies as pyproject.toml lists them, plus dnspython's idna
	# extra: IDNA 2008 is part of what the server does (internationalised domains).
	"$VENV/bin/python" - "$ROOT/pyproject.toml" >"$WORK/runtime-requirements.txt" <<'PYEOF'
import sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print("\n".join(deps + ["idna>=3.7"]))
PYEOF
	"$VENV/bin/python" -m pip install --quiet -r "$WORK/runtime-requirements.txt"
	touch "$stamp"
}

# PILLARBOX_SMOKE=version skips the selftest (test-install runs it in its chroot).
smoke() {
	exe=$1
	"$exe" version
	[ "${PILLARBOX_SMOKE:-selftest}" = version ] || "$exe" selftest
}

build() {
	bundle=$1
	case $bundle in
	onefile) dist=$ROOT/dist ;;
	onedir) dist=$ROOT/dist/onedir ;;
	*) echo "unknown bundle $bundle" >&2 && exit 2 ;;
	esac
	PILLARBOX_BUNDLE=$bundle "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
		--distpath "$dist" --workpath "$WORK/pyinstaller-$bundle" "$ROOT/build/pillarbox.spec"
	case $bundle in
	onefile) smoke "$dist/pillarbox" && ls -l "$dist/pillarbox" ;;
	onedir) smoke "$dist/pillarbox/pillarbox" && du -sh "$dist/pillarbox" ;;
	esac
}

mkdir -p "$WORK"
venv
case $what in
both) build onefile && build onedir ;;
venv) ;;
*) build "$what" ;;
esac
