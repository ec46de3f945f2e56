#!/bin/sh
# Builds the libFuzzer targets of tests/fuzz with clang++ (no autotools) and runs each
# one for FUZZ_SECONDS on a copy of its seed corpus. Prints executions, coverage and
# crashes per target; exits non-zero if any target crashed (inputs are kept under the
# build dir) or if a saved regression input still fails.
#
#   tests/fuzz/run-fuzz.sh [target ...]      e.g. run-fuzz.sh ring-line director
#
# Environment: FUZZ_BUILD_DIR (default /tmp/director-fuzz), FUZZ_SECONDS (10),
# FUZZ_RUNS (stop a target after this many executions, if it gets there before
# FUZZ_SECONDS; default: no limit), CXX (clang++, or clang++-14 when that is what is
# installed), FUZZ_JOBS (parallel compiles, default: number of CPUs), FUZZ_RSS_MB
# (2048), FUZZ_BUILD_ONLY=1 to stop after building.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
core="$top/src/core"
build=${FUZZ_BUILD_DIR:-/tmp/director-fuzz}
seconds=${FUZZ_SECONDS:-10}
runs=${FUZZ_RUNS:--1}
rss_mb=${FUZZ_RSS_MB:-2048}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

if [ -z "${CXX:-}" ]; then
	if command -v clang++ >/dev/null 2>&1; then CXX=clang++; else CXX=clang++-14; fi
fi
case "$build" in
"$top"|"$top"/*) echo "run-fuzz: FUZZ_BUILD_DIR must be outside the source tree" >&2; exit 2 ;;
esac

if [ $# -gt 0 ]; then
	targets="$*"
else
	targets=$(cd "$here" && ls fuzz-*.cc | sed 's/^fuzz-//; s/\.cc$//')
fi

san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cxxflags="-std=gnu++17 -g -O1 -Wall -Wextra $san -I$core"
mkdir -p "$build/obj" || exit 2

# The core library, instrumented for coverage (fuzzer-no-link) and the sanitizers;
# rebuilt whenever anything in src/core is newer than the last build or the
# last build was of another source tree (the stamp names it).
export CXX cxxflags build here
stamp="$build/obj/.stamp"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$core" ] ||
   [ -n "$(find "$core" -newer "$stamp" | head -n 1)" ]; then
	echo "run-fuzz: building src/core with $CXX into $build"
	rm -f "$build"/obj/*.o "$stamp"
	ls "$core"/*.cc | xargs -P "$jobs" -n 1 sh -c \
		'$CXX $cxxflags -fsanitize=fuzzer-no-link -c "$1" -o "$build/obj/$(basename "$1" .cc).o"' sh ||
		{ echo "run-fuzz: core build failed" >&2; exit 2; }
	echo "$core" >"$stamp"
fi
export core_objs="$(ls "$build"/obj/*.o | tr '\n' ' ')"
echo "run-fuzz: building targets: $(echo $targets)"
for t in $targets; do echo "$t"; done | xargs -P "$jobs" -n 1 sh -c \
	'$CXX $cxxflags -fsanitize=fuzzer "$here/fuzz-$1.cc" $core_objs -lcrypto -o "$build/fuzz-$1"' sh ||
	{ echo "run-fuzz: target build failed" >&2; exit 2; }
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
summary="$build/summary.txt"
: > "$summary"
for t in $targets; do
	bin="$build/fuzz-$t"
	crashdir="$build/crashes/$t"
	corpus="$build/corpus/$t"
	log="$build/fuzz-$t.log"
	rm -rf "$corpus" "$crashdir"
	mkdir -p "$corpus" "$crashdir"
	if [ -d "$here/corpus/$t" ]; then
		cp "$here/corpus/$t"/* "$corpus"/ 2>/dev/null
	fi

	# Inputs that once found a bug must keep passing.
	regress="ok"
	if [ -d "$here/regressions/$t" ] && [ -n "$(ls "$here/regressions/$t" 2>/dev/null)" ]; then
		if ! timeout 300 "$bin" -runs=1 -timeout=25 -rss_limit_mb="$rss_mb" "$here/regressions/$t"/* \
			> "$build/regress-$t.log" 2>&1; then
			regress="FAILED (see $build/regress-$t.log)"
			failed=1
		fi
	fi

	# -max_total_time bounds the run; timeout(1) is a backstop for a hung target.
	timeout $((seconds + 120)) "$bin" -max_total_time="$seconds" -runs="$runs" \
		-rss_limit_mb="$rss_mb" -timeout=25 -max_len=4096 -print_final_stats=1 \
		-artifact_prefix="$crashdir/" "$corpus" > "$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | sed 's/ft: //')
	# libFuzzer also saves inputs that took over 10 s (slow-unit-*): on a loaded
	# machine that is no finding, so they are kept but do not count.
	crashes=$(ls "$crashdir" | grep -v '^slow-unit-' | wc -l)
	line=$(printf '%-16s execs=%-10s exec/s=%-7s cov=%-5s ft=%-6s crashes=%s regressions=%s' \
		"$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$crashes" "$regress")
	if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
		failed=1
		line="$line  FAILED (rc=$rc, log $log)"
		for f in "$crashdir"/*; do
			case "$f" in */slow-unit-*) continue ;; esac
			[ -e "$f" ] && line="$line
    crash input: $f"
		done
	fi
	echo "$line" | tee -a "$summary"
done
echo "run-fuzz: summary in $summary"
exit $failed
