#!/bin/sh
# Builds the whole project out of tree with AddressSanitizer and UBSan and runs two
# tiers under them:
#  unit         the Check suites of the core (tests/unit) and of the adapter
#               (tests/adapter, socketpairs over lib-dovecot). Reports from Check's forked test
#               children (CK_FORK) make the child exit non-zero or die of a signal,
#               which Check counts as a failure; the log grep below catches the rest.
#  integration  a fast subset of tests/integration (INTEGRATION_TESTS below) with
#               DIRECTOR_BIN = the sanitized src/director/director under real Dovecot
#               masters; RIG_SANITIZER_DIR makes rig.py configure the directors for
#               ASan (tests/fuzz/README.md) and collect their report files and any
#               sanitizer line of their logs there. Needs root (else skipped).
# Exits non-zero when the build fails, a test fails, or any sanitizer report shows up.
#
#   tests/sanitize.sh
#
# Environment: SANITIZE_BUILD_DIR (default /tmp/director-asan), CXX (default clang++
# if installed, else g++), SANITIZE_JOBS (make -j, default: number of CPUs),
# SANITIZE_TIERS (default "unit integration"), SANITIZE_INTEGRATION_TESTS (test files
# of tests/integration for the integration tier, default below).
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-/tmp/director-asan}
jobs=${SANITIZE_JOBS:-$(nproc 2>/dev/null || echo 2)}
if [ -z "${CXX:-}" ]; then
	if command -v clang++ >/dev/null 2>&1; then CXX=clang++; else CXX=g++; fi
fi
case "$build" in
"$src"|"$src"/*) echo "sanitize: SANITIZE_BUILD_DIR must be outside the source tree" >&2; exit 2 ;;
esac
if [ ! -x "$src/configure" ]; then
	echo "sanitize: $src/configure missing; run ./autogen.sh in the source tree first" >&2
	exit 2
fi

san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
mkdir -p "$build" || exit 2
cd "$build" || exit 2

# A build of another source tree (another clone left it in the same directory)
# keeps dependency files naming that tree's sources: start it afresh.
if [ -f config.status ] && ! grep -qxF "srcdir='$src'" config.status; then
	if ! grep -qF 'S["PACKAGE_NAME"]="dovecot-director"' config.status; then
		echo "sanitize: $build holds another project's build; choose another SANITIZE_BUILD_DIR" >&2
		exit 2
	fi
	echo "sanitize: $build was configured for another source tree; starting it afresh"
	find . -mindepth 1 -delete || exit 2
fi

# A run that stops before its tests must not leave an earlier run's results
# to be counted as its own (run-tests.sh tallies these logs).
rm -f check-unit.log check-adapter.log integration.log tests/unit/*.log tests/unit/*.trs \
	tests/adapter/*.log tests/adapter/*.trs

# Reconfigure when the compiler changed or configure is newer than the last run.
if [ ! -f config.status ] || [ "$src/configure" -nt config.status ] ||
   ! grep -q "CXX='$CXX'" config.status 2>/dev/null; then
	echo "sanitize: configuring in $build with CXX=$CXX"
	"$src/configure" CXX="$CXX" CXXFLAGS="-g -O1 $san" LDFLAGS="$san" > configure.log 2>&1 ||
		{ echo "sanitize: configure failed, see $build/configure.log" >&2; exit 2; }
fi
echo "sanitize: building (log $build/build.log)"
make -j"$jobs" > build.log 2>&1 ||
	{ tail -n 30 build.log; echo "sanitize: build failed, see $build/build.log" >&2; exit 2; }

tiers=${SANITIZE_TIERS:-unit integration}
status=0

run_unit_tier() {
	# detect_leaks: LeakSanitizer runs at exit of every process, forked test children
	# included, and exits non-zero on a leak. halt_on_error/abort_on_error: the first
	# report ends the process so Check sees the failure.
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
	export CK_FORK=yes
	for dir in tests/unit tests/adapter; do
		run_check_dir "$dir"
	done
}

# One directory of Check suites under the sanitizers, with a summary per suite.
run_check_dir() {
	dir=$1
	log=check-$(basename "$dir").log
	echo "sanitize: unit tier: make -C $dir check"
	make -C "$dir" -j"$jobs" check > "$log" 2>&1
	rc=$?

	# Sanitizer reports in any test log (a child's report is printed to the same stderr).
	reports=$(grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer" \
		"$dir"/*.log 2>/dev/null | grep -v "^$dir/test-suite.log\$")
	echo "sanitize: $dir summary"
	for trs in "$dir"/*.trs; do
		[ -f "$trs" ] || continue
		name=$(basename "$trs" .trs)
		result=$(sed -n 's/^:test-result: //p' "$trs" | head -n 1)
		checks=$(grep -E -o '[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' \
			"$dir/$name.log" 2>/dev/null | tail -n 1)
		printf '  %-24s %-5s %s\n' "$name" "$result" "$checks"
	done
	if [ "$rc" -ne 0 ]; then
		echo "sanitize: make check failed (rc=$rc), see $build/$log and $build/$dir/*.log"
		status=1
	fi
	if [ -n "$reports" ]; then
		echo "sanitize: sanitizer reports in:"
		for f in $reports; do echo "    $build/$f"; done
		status=1
	fi
}

# The integration subset (pytest node ids; "not slow" applies): a few minutes on
# 2 CPUs. Rings are all ours: a ring of 3 (test_ring.py) and a short chaos run.
# Not test_bad_clients.py: its bounds are on RSS and response time, which ASan's
# quarantine and slowdown distort (it failed once here on a loaded machine).
INTEGRATION_TESTS=${SANITIZE_INTEGRATION_TESTS:-test_sessions.py test_bad_input.py test_hosts.py
	test_ring.py::test_ring_forms_with_consistent_neighbours
	test_ring.py::test_host_changes_propagate_to_every_director
	test_ring.py::test_login_state_is_shared_across_directors
	test_ring.py::test_move_on_one_director_kicks_session_proxied_by_another
	test_ring.py::test_kill9_director_rejoins_and_resyncs
	test_ring.py::test_director_instance_restart_learns_changes_made_while_down
	test_chaos.py}

# Prints a report with the director's frames resolved (the reports are written
# unsymbolized: the chrooted director cannot run a symbolizer).
show_report() {
	bin="$build/src/director/director"
	head -n 3 "$1"
	grep -E '^ +#[0-9]+ ' "$1" | head -n 8 | while read -r num addr where _; do
		off=$(echo "$where" | sed -n "s|^(${bin}+\\(0x[0-9a-f]*\\))\$|\\1|p")
		if [ -n "$off" ]; then
			echo "$num $(addr2line -f -C -p -e "$bin" "$off" 2>/dev/null)"
		else
			echo "$num $addr $where"
		fi
	done
}

run_integration_tier() {
	if [ "$(id -u)" != 0 ]; then
		echo "sanitize: integration tier SKIPPED (needs root: it starts Dovecot masters)"
		return
	fi
	reports_dir="$build/integration-reports"
	rm -rf "$reports_dir"
	mkdir -p "$reports_dir"
	echo "sanitize: integration tier: $(echo $INTEGRATION_TESTS) (log $build/integration.log)"
	(cd "$src/tests/integration" &&
	 env -u ASAN_OPTIONS -u UBSAN_OPTIONS PYTHONDONTWRITEBYTECODE=1 \
		RIG_SANITIZER_DIR="$reports_dir" DIRECTOR_BIN="$build/src/director/director" \
		RING_TESTS=1 RING_MIXES=ours,ours,ours RING_MIX5=none \
		CHAOS_MIX=ours,ours,ours CHAOS_SECONDS=${CHAOS_SECONDS:-45} \
		timeout 1200 /usr/bin/python3 -m pytest -v -p no:cacheprovider -rs -m "not slow" \
		$INTEGRATION_TESTS) > integration.log 2>&1
	rc=$?
	grep -E '^=+ .* in [0-9.]+s' integration.log | tail -n 1 | sed 's/^/  /'
	if [ "$rc" -ne 0 ]; then
		echo "sanitize: integration tests failed (rc=$rc), see $build/integration.log"
		status=1
	fi
	if [ -n "$(ls "$reports_dir")" ]; then
		echo "sanitize: sanitizer reports from the director under Dovecot (first one shown):"
		ls "$reports_dir"/* | sed 's/^/    /'
		show_report "$(ls "$reports_dir"/* | head -n 1)" | sed 's/^/      /'
		status=1
	fi
}

for tier in $tiers; do
	case "$tier" in
	unit) run_unit_tier ;;
	integration) run_integration_tier ;;
	*) echo "sanitize: unknown tier $tier" >&2; exit 2 ;;
	esac
done
[ "$status" -eq 0 ] && echo "sanitize: OK, no sanitizer reports"
exit $status
