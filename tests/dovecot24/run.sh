#!/bin/bash
# The Dovecot 2.4.1 tier, in one command (as root, on the Debian 12 host):
#
#   tests/dovecot24/run.sh
#
# Builds a Debian 13 chroot with Dovecot 2.4.1 (chroot.sh), copies this tree
# into it, builds the Debian package there with warnings as errors (which runs
# the unit and adapter suites), installs it with apt-get (the director, the settings
# plugin, the doveadm and login plugins in the chroot's Dovecot), and runs the
# 2.4 integration tests (test_smoke24.py, test_metrics24.py, test_health24.py,
# test_features24.py) against the installed files and real
# 2.4.1 processes on loopback; at the end the package is removed again
# (tests/package/test-package.sh). Then, on the
# host, the mixed-version ring (test_mixed_ring.py): the host's Dovecot 2.3
# director (stock, or MIXED_DIRECTOR_BIN) and ours on 2.4 in one ring, and the
# chaos test with one 2.4 director in a 2.3 ring (CHAOS24_SECONDS). The chroot is
# deleted afterwards unless DD_KEEP_CHROOT=yes; DD_CHROOT picks its place
# (default /tmp/dd-trixie). The last line is "tests24: N passed, N failed".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
export DD_CHROOT=${DD_CHROOT:-/tmp/dd-trixie}
root=$DD_CHROOT
t0=$SECONDS

cleanup() {
	if [ "${DD_KEEP_CHROOT:-no}" = yes ]; then
		"$here/chroot.sh" umount
	else
		"$here/chroot.sh" destroy
	fi
}
trap cleanup EXIT

"$here/chroot.sh" create

# A fresh copy of the tree (without build products) at /src in the chroot.
rm -rf "$root/src" "$root/build" "$root/tmp/dd24-smoke"
mkdir -p "$root/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$src" ls-files -co --exclude-standard -z | (cd "$src" && tar --null -T - -cf -) |
		tar -xf - -C "$root/src"
else
	tar -C "$src" --exclude=./_build -cf - . | tar -xf - -C "$root/src"
fi

status=0
# The Debian package of this tree, built with warnings as errors (its build
# runs the unit and adapter suites) and installed into the chroot's Dovecot; the 2.4
# integration tests then run against the installed files.
"$here/chroot.sh" run /bin/bash -c '
	set -e
	DIRECTOR_CONFIGURE_FLAGS=--enable-werror /src/tests/package/test-package.sh build /src /build
	/src/tests/package/test-package.sh install /build
	cd /src/tests/dovecot24
	timeout 900 python3 -m pytest -v -p no:cacheprovider test_smoke24.py test_metrics24.py \
		test_health24.py test_features24.py >/build/pytest.log 2>&1
' | tee "$root.package.log" || status=$?
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
if [ $status -eq 0 ]; then
	PYTHONDONTWRITEBYTECODE=1 timeout 600 "$here/chroot.sh" host /usr/bin/python3 -m pytest -v \
		-p no:cacheprovider "$here/test_mixed_ring.py" >"$root/build/pytest-mixed.log" 2>&1 ||
		status=$?
fi
# The chaos test (tests/integration/test_chaos.py) with our 2.4 director in a
# ring of 2.3 ones: CHAOS24_SECONDS of chaos (default 60; 0 skips it; longer
# runs e.g. 600), CHAOS24_MIX the ring (default stock,ours24,stock: stock 2.3
# directors on the host, ours on 2.4 from the chroot; "ours" needs DIRECTOR_BIN,
# a 2.3 build of ours). The cluster lives inside the chroot so that both
# sides see its files.
if [ $status -eq 0 ] && [ "${CHAOS24_SECONDS:-60}" != 0 ]; then
	rm -rf "$root/tmp/chaos24"
	mkdir -p "$root/tmp/chaos24"
	CHAOS_SECONDS=${CHAOS24_SECONDS:-60} CHAOS_MIX=${CHAOS24_MIX:-stock,ours24,stock} \
		CHAOS_TMPDIR=$root/tmp/chaos24 DIRECTOR_BIN=${DIRECTOR_BIN:-/usr/lib/dovecot/director} \
		STOCK_DIRECTOR_BIN=${STOCK_DIRECTOR_BIN:-/usr/lib/dovecot/director} \
		PYTHONDONTWRITEBYTECODE=1 timeout $((${CHAOS24_SECONDS:-60} + 900)) \
		"$here/chroot.sh" host /usr/bin/python3 -m pytest -v -p no:cacheprovider \
		"$src/tests/integration/test_chaos.py" >"$root/build/pytest-chaos24.log" 2>&1 ||
		status=$?
fi
# Removing the package takes every file out of Dovecot's directories again.
"$here/chroot.sh" run /src/tests/package/test-package.sh remove | tee -a "$root.package.log" ||
	status=$?
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# Totals: Check suites and pytest.
passed=0 failed=0 skipped=0
# shellcheck source=tests/tally.sh
. "$src/tests/tally.sh"
tally_check_logs "$root"/build/src/debian/build/tests/unit/check-*.log \
	"$root"/build/src/debian/build/tests/adapter/check-*.log
for log in "$root/build/pytest.log" "$root/build/pytest-mixed.log" \
	"$root/build/pytest-chaos24.log"; do
	[ -f "$log" ] || continue
	grep -E '(PASSED|FAILED|ERROR)' "$log" | grep '::' || true
	[ $status -eq 0 ] || tail -n 80 "$log"
	tally_pytest_log "$log"
done
# Package checks: one test per "ok:" or "FAIL:" line.
if [ -f "$root.package.log" ]; then
	passed=$((passed + $(grep -c '^ok: ' "$root.package.log" || true)))
	failed=$((failed + $(grep -c '^FAIL: ' "$root.package.log" || true)))
	rm -f "$root.package.log"
fi
[ $status -eq 0 ] || [ $failed -gt 0 ] || failed=1
echo "dovecot24: $(du -smx "$root" 2>/dev/null | cut -f1) MB chroot, $((SECONDS - t0)) s"
echo "tests24: $passed passed, $failed failed"
[ $failed -eq 0 ]
