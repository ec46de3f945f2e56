#!/bin/sh
# Builds the whole project out of tree with AddressSanitizer and UBSan and runs the
# Check unit suites (tests/unit) under them. Exits non-zero when the build fails, a
# test fails, or any sanitizer report shows up in a test log, including reports from
# Check's forked test children (CK_FORK): such a child exits non-zero or dies of a
# signal, which Check counts as a failure, and the log grep below catches the rest.
# The integration tier is not run here.
#
#   tests/sanitize.sh
#
# Environment: SANITIZE_BUILD_DIR (default /tmp/director-asan), CXX (default clang++
# if installed, else g++), SANITIZE_JOBS (make -j, default: number of CPUs).
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

# detect_leaks: LeakSanitizer runs at exit of every process, forked test children
# included, and exits non-zero on a leak. halt_on_error/abort_on_error: the first
# report ends the process so Check sees the failure.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export CK_FORK=yes
echo "sanitize: make -C tests/unit check"
rm -f tests/unit/*.log tests/unit/*.trs
make -C tests/unit -j"$jobs" check > check.log 2>&1
rc=$?

# Sanitizer reports in any test log (a child's report is printed to the same stderr).
reports=$(grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer" \
	tests/unit/*.log 2>/dev/null | grep -v '^tests/unit/test-suite.log$')
echo "sanitize: summary"
for trs in tests/unit/*.trs; do
	[ -f "$trs" ] || continue
	name=$(basename "$trs" .trs)
	result=$(sed -n 's/^:test-result: //p' "$trs" | head -n 1)
	checks=$(grep -E -o '[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' \
		"tests/unit/$name.log" 2>/dev/null | tail -n 1)
	printf '  %-24s %-5s %s\n' "$name" "$result" "$checks"
done
status=0
if [ "$rc" -ne 0 ]; then
	echo "sanitize: make check failed (rc=$rc), see $build/check.log and $build/tests/unit/*.log"
	status=1
fi
if [ -n "$reports" ]; then
	echo "sanitize: sanitizer reports in:"
	for f in $reports; do echo "    $build/$f"; done
	status=1
fi
[ "$status" -eq 0 ] && echo "sanitize: OK, no sanitizer reports"
exit $status
