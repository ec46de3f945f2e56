#!/bin/bash
# The whole test suite in one command, on a fresh Debian 12 machine:
#   sudo ./run-tests.sh
# Installs the missing Debian packages (when run as root), builds out of tree
# in _build/ with warnings as errors, and runs every tier: "make check" (the
# Check unit suites and the loopback integration tests against real Dovecot
# processes), the unit suites and a subset of the integration tests again
# under ASan+UBSan (tests/sanitize.sh), each libFuzzer target for
# FUZZ_SECONDS (default 10; set it higher for a long run), and the Dovecot
# 2.4.1 tier in a Debian 13 chroot (tests/dovecot24/run.sh; about 6 minutes
# and 0.8 GB of disk; DOVECOT24=no skips it), which also builds, installs
# and removes the Debian package there. The Debian package is also built and
# installed on this machine for a smoke test, and removed again
# (tests/package/test-package.sh; PACKAGE_TESTS=no skips it).
# The last line is the total: "tests: N passed, N failed, N skipped".
set -euo pipefail

# One run at a time on a machine: the tiers share scratch directories under
# TMPDIR (the sanitizer and fuzz builds, the chroot) and the package tier
# installs and removes a system package, so a second run waits for the first
# (at most 90 minutes). flock -o: the lock stays with flock, not with the
# daemons the tests start.
lock=${TMPDIR:-/tmp}/dovecot-director-tests.lock
if [ "${DIRECTOR_TESTS_LOCK:-}" != "$lock" ]; then
	export DIRECTOR_TESTS_LOCK=$lock
	flock -n -o "$lock" true ||
		echo "run-tests.sh: another run holds $lock; waiting for it" >&2
	exec flock -o -w 5400 "$lock" "$0" "$@"
fi
cd "$(dirname "$0")"
src=$(pwd)
build=${BUILD_DIR:-$src/_build}

packages=(dovecot-core dovecot-dev dovecot-imapd dovecot-pop3d dovecot-lmtpd
	  check libssl-dev autoconf automake libtool pkg-config g++ make
	  python3 python3-pytest python3-prometheus-client clang libclang-rt-14-dev debootstrap
	  debhelper ucf)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# policy-rc.d keeps the system dovecot from starting; tests run their own.
	policy=/usr/sbin/policy-rc.d
	made_policy=no
	if [ ! -e $policy ]; then
		printf '#!/bin/sh\nexit 101\n' > $policy
		chmod +x $policy
		made_policy=yes
	fi
	apt-get install -y -q --no-install-recommends "${missing[@]}"
	[ $made_policy = yes ] && rm -f $policy
fi

jobs=$(nproc 2>/dev/null || echo 2)
[ -x "$src/configure" ] || ./autogen.sh
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
	"$src/configure" --enable-werror
fi
make -j"$jobs"

status=0
make -j"$jobs" check || status=$?

# The sanitizer and fuzz tiers build outside the source tree (their scripts
# insist on it).
asan_dir=${SANITIZE_BUILD_DIR:-${TMPDIR:-/tmp}/dovecot-director-asan}
fuzz_dir=${FUZZ_BUILD_DIR:-${TMPDIR:-/tmp}/dovecot-director-fuzz}
SANITIZE_BUILD_DIR=$asan_dir "$src/tests/sanitize.sh" 2>&1 | tee "$build/sanitize.log" ||
	status=$?
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
FUZZ_BUILD_DIR=$fuzz_dir FUZZ_SECONDS=${FUZZ_SECONDS:-10} "$src/tests/fuzz/run-fuzz.sh" |
	tee "$build/fuzz.log" || status=$?
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The Debian package on this machine: built with dpkg-buildpackage, installed
# with apt-get (it diverts the stock /usr/lib/dovecot/director), an IMAP login
# and LMTP delivery through the installed director, removed again (the stock
# director must be back). Needs root; PACKAGE_TESTS=no skips it.
package_log=$build/package.log
rm -f "$package_log"
if [ "${PACKAGE_TESTS:-yes}" != no ]; then
	if [ "$(id -u)" = 0 ]; then
		# nocheck: the unit suites already ran above.
		DEB_BUILD_OPTIONS=nocheck "$src/tests/package/test-package.sh" all "$src" \
			"${PACKAGE_BUILD_DIR:-${TMPDIR:-/tmp}/dovecot-director-package}" 2>&1 |
			tee "$package_log" || status=$?
		[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	else
		echo "SKIP: the package tier needs root (it installs the package)" >&2
	fi
fi

# The Dovecot 2.4.1 tier: a Debian 13 chroot (debootstrap, deleted again),
# build, unit and integration tests in it, and a mixed 2.3/2.4 ring. Needs
# root; DOVECOT24=no skips it (quick local runs).
dovecot24_log=$build/dovecot24.log
rm -f "$dovecot24_log"
if [ "${DOVECOT24:-yes}" != no ]; then
	if [ "$(id -u)" = 0 ]; then
		"$src/tests/dovecot24/run.sh" 2>&1 | tee "$dovecot24_log" || status=$?
		[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	else
		echo "SKIP: the Dovecot 2.4 tier needs root (it builds a chroot)" >&2
	fi
fi

# Totals over every tier: Check suites report "Checks: N, Failures: F,
# Errors: E"; pytest reports "N passed, M failed".
passed=0 failed=0 skipped=0
# shellcheck source=tests/tally.sh
. "$src/tests/tally.sh"
tally_check_logs tests/unit/check-*.log tests/adapter/check-*.log \
	"$asan_dir"/tests/unit/check-*.log
ilog=tests/integration/run-integration.sh.log
[ -f "$ilog" ] && tail -n 40 "$ilog"
for log in "$ilog" "$asan_dir/integration.log"; do
	tally_pytest_log "$log"
done
if grep -q ':test-result: SKIP' tests/integration/run-integration.sh.trs 2>/dev/null; then
	skipped=$((skipped + 1))
fi
# The sanitizer integration tier needs root: when it did not run, it is one
# skipped test.
if grep -q 'integration tier SKIPPED' "$build/sanitize.log" 2>/dev/null; then
	skipped=$((skipped + 1))
fi
if [ -f "$dovecot24_log" ]; then
	line=$(grep -E '^tests24: [0-9]+ passed, [0-9]+ failed' "$dovecot24_log" | tail -n 1 || true)
	if [ -n "$line" ]; then
		# shellcheck disable=SC2046
		set -- $(echo "${line#tests24:}" | grep -Eo '[0-9]+')
		passed=$((passed + $1))
		failed=$((failed + $2))
	else
		failed=$((failed + 1))
	fi
elif [ "${DOVECOT24:-yes}" != no ]; then
	skipped=$((skipped + 1))
fi
# One test per package check ("ok:" or "FAIL:" lines).
if [ -f "$package_log" ]; then
	passed=$((passed + $(grep -c '^ok: ' "$package_log" || true)))
	failed=$((failed + $(grep -c '^FAIL: ' "$package_log" || true)))
elif [ "${PACKAGE_TESTS:-yes}" != no ]; then
	skipped=$((skipped + 1))
fi
# One check per fuzz target, named for what it shows: "fuzz target T ran N
# executions without a crash" (N as libFuzzer counted them, FUZZ_SECONDS
# each); its regression inputs are part of the same check.
fuzz_targets=0 fuzz_execs=0
while read -r name execs rest; do
	execs=${execs#execs=}
	fuzz_targets=$((fuzz_targets + 1))
	case $execs in
	'' | *[!0-9]*) execs_text="an unknown number of" ;;
	*) execs_text=$execs; fuzz_execs=$((fuzz_execs + execs)) ;;
	esac
	if echo "$rest" | grep -q ' crashes=0 regressions=ok$'; then
		echo "PASS: fuzz target $name ran $execs_text executions without a crash"
		passed=$((passed + 1))
	else
		echo "FAIL: fuzz target $name ($execs_text executions): $rest"
		failed=$((failed + 1))
	fi
done < <(grep -E '^[a-z-]+ +execs=' "$build/fuzz.log" || true)
if [ $status -ne 0 ]; then
	echo "a tier failed; logs: $build/tests/*/*.log, $asan_dir, $fuzz_dir" >&2
	[ $failed -eq 0 ] && failed=1
fi
echo "fuzz: $fuzz_targets targets, $fuzz_execs executions in all (each target is one check above)"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] && [ $status -eq 0 ]
