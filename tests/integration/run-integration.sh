#!/bin/sh
# Runs the loopback integration suite (real Dovecot masters on 127.x.y.z).
# DIRECTOR_BIN: director under test (make check passes the built one);
# INTEGRATION_DIRECTOR_BIN overrides it; STOCK_DIRECTOR_BIN: the oracle.
# Exit 77 (skip) only when not root.
set -u
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: tests/integration needs root (it starts Dovecot masters on loopback" \
	     "and delivers mail as uid 65534); run 'make check' as root" >&2
	exit 77
fi

if [ -n "${INTEGRATION_DIRECTOR_BIN:-}" ]; then
	DIRECTOR_BIN=$INTEGRATION_DIRECTOR_BIN
fi
: "${DIRECTOR_BIN:=/usr/lib/dovecot/director}"
: "${STOCK_DIRECTOR_BIN:=/usr/lib/dovecot/director}"
export DIRECTOR_BIN STOCK_DIRECTOR_BIN

for f in /usr/sbin/dovecot /usr/bin/doveadm "$DIRECTOR_BIN" "$STOCK_DIRECTOR_BIN"; do
	if [ ! -x "$f" ]; then
		echo "FAIL: $f is missing (apt-get install dovecot-core dovecot-imapd" \
		     "dovecot-pop3d dovecot-lmtpd; or build the project)" >&2
		exit 1
	fi
done
if ! /usr/bin/python3 -c 'import pytest' 2>/dev/null; then
	echo "FAIL: /usr/bin/python3 has no pytest (apt-get install python3-pytest)" >&2
	exit 1
fi

export PYTHONDONTWRITEBYTECODE=1
echo "director under test: $DIRECTOR_BIN"
echo "oracle:              $STOCK_DIRECTOR_BIN"
# -p no:cacheprovider: do not write .pytest_cache into the (maybe read-only) source tree
# INTEGRATION_PYTEST_ARGS: more pytest arguments for a partial run, e.g.
# "-k test_sessions" (make distcheck with a quick integration tier).
# shellcheck disable=SC2086
exec /usr/bin/python3 -m pytest -v -p no:cacheprovider -rs "$here" ${INTEGRATION_PYTEST_ARGS:-} "$@"
