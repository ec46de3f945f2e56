#!/bin/sh
# demo.sh: on a Debian 12 machine, as root: install what is missing, build the
# project out of tree, start 3 Dovecot backends and 1 director proxy running
# OUR director on loopback, log in over IMAP, deliver over LMTP, show
# `doveadm director status`.
#   ./demo.sh          bring it up (DIRECTOR_BIN=/path/director: use that binary, no build)
#   ./demo.sh stop     stop what ./demo.sh started (only the recorded master pids)
#   ./demo.sh status   doveadm director status of the running demo
# BUILD_DIR (default /tmp/dovecot-director-build) is where the project is built.
set -eu
src=$(cd "$(dirname "$0")" && pwd)
rig="$src/tests/integration/rig.py"
: "${BUILD_DIR:=${TMPDIR:-/tmp}/dovecot-director-build}"

case "${1:-up}" in
stop|down)
	exec /usr/bin/python3 "$rig" demo stop ;;
status)
	exec /usr/bin/python3 "$rig" demo status ;;
up) ;;
*)
	echo "usage: $0 [up|stop|status]" >&2; exit 64 ;;
esac

if [ "$(id -u)" != 0 ]; then
	echo "demo.sh must run as root (it installs packages and starts Dovecot masters)" >&2
	exit 1
fi

pkgs="dovecot-core dovecot-dev dovecot-imapd dovecot-pop3d dovecot-lmtpd check libssl-dev
      autoconf automake libtool pkg-config g++ make python3 python3-pytest"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

if [ -z "${DIRECTOR_BIN:-}" ]; then
	if [ ! -x "$src/configure" ]; then
		echo "== ./autogen.sh"
		(cd "$src" && ./autogen.sh)
	fi
	mkdir -p "$BUILD_DIR"
	if [ ! -f "$BUILD_DIR/Makefile" ]; then
		echo "== configure (in $BUILD_DIR)"
		(cd "$BUILD_DIR" && "$src/configure")
	fi
	echo "== make (in $BUILD_DIR)"
	make -C "$BUILD_DIR" -j"$(nproc)" >"$BUILD_DIR/demo-make.log" 2>&1 || {
		tail -30 "$BUILD_DIR/demo-make.log"; echo "build failed, see $BUILD_DIR/demo-make.log" >&2; exit 1; }
	DIRECTOR_BIN="$BUILD_DIR/src/director/director"
fi
export DIRECTOR_BIN
echo "== director binary: $DIRECTOR_BIN"

/usr/bin/python3 "$rig" demo up
echo
echo "Stop it with: $0 stop   (stops only the Dovecot masters this demo started)"
