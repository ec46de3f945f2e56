# Sourced by run-tests.sh and tests/dovecot24/run.sh: adds what test logs
# report to the shell variables passed, failed and skipped. Safe under
# "set -euo pipefail".

# Check suites end with "Checks: N, Failures: F, Errors: E"; a log without
# that line counts as one failure (the suite crashed or did not run).
tally_check_logs() {
	local log line
	for log in "$@"; do
		[ -f "$log" ] || continue
		line=$(grep -Eo 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1 ||
			true)
		if [ -z "$line" ]; then
			failed=$((failed + 1))
			continue
		fi
		# shellcheck disable=SC2046
		set -- $(echo "$line" | grep -Eo '[0-9]+')
		passed=$((passed + $1 - $2 - $3))
		failed=$((failed + $2 + $3))
	done
}

# pytest ends with "== N passed, M failed, K skipped, E errors in S s ==".
tally_pytest_log() {
	local summary kind n
	[ -f "$1" ] || return 0
	summary=$(grep -E '^=+ .*(passed|failed|error|skipped).* in [0-9.]+s' "$1" | tail -n 1 ||
		true)
	for kind in passed failed error skipped; do
		n=$(echo "$summary" | grep -Eo "[0-9]+ $kind" | grep -Eo '[0-9]+' || true)
		n=${n:-0}
		case $kind in
		passed) passed=$((passed + n)) ;;
		failed | error) failed=$((failed + n)) ;;
		skipped) skipped=$((skipped + n)) ;;
		esac
	done
}
