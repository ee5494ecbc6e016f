#!/usr/bin/env bash
# Runs the whole suite with the race detector. Store and HTTP suites run on
# the embedded SQLite and on a throwaway PostgreSQL that the test harness
# starts from the local binaries (internal/pgtest). Prints a summary that
# says how many PostgreSQL subtests ran; the full log on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

go test -race -count=1 -v "$@" ./... >"$log" 2>&1
status=$?

if [ "$status" -ne 0 ]; then
	cat "$log"
	echo
	echo "FAILED tests:"
	grep -E -- '--- FAIL' "$log" || true
fi
grep -E '^(ok|FAIL|\?|pgtest:)' "$log" | grep -v 'no test files'
pg_pass=$(grep -cE -- '--- PASS: .*/postgres( |$)' "$log")
pg_skip=$(grep -cE -- '--- SKIP: .*/postgres( |$)' "$log")
sq_pass=$(grep -cE -- '--- PASS: .*/sqlite( |$)' "$log")
echo
echo "embedded SQLite subtests passed: $sq_pass"
echo "PostgreSQL subtests passed:      $pg_pass"
if [ "$pg_skip" -gt 0 ]; then
	echo
	echo "!!! WARNING: $pg_skip PostgreSQL subtests were SKIPPED: no PostgreSQL binaries found."
	echo "!!! Install them (apt-get install -y postgresql) or set LC_TEST_POSTGRES_URL."
	grep -m1 -E 'PostgreSQL NOT AVAILABLE' "$log" || true
fi
exit "$status"
