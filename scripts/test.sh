#!/usr/bin/env bash
# Runs the whole suite with the race detector. Store and HTTP suites run on
# the embedded SQLite and on a throwaway PostgreSQL that the test harness
# starts from the local binaries (internal/pgtest). gotestsum (a pinned Go
# tool) prints a line per package as it finishes and the failures at the
# end; then a summary says how many SQLite and PostgreSQL subtests passed.
set -uo pipefail
cd "$(dirname "$0")/.."
json=$(mktemp)
trap 'rm -f "$json"' EXIT

echo "running the suite with -race (a line per package as it finishes; about 4 minutes)"
go tool gotestsum --format pkgname-and-test-fails --jsonfile "$json" -- -race -count=1 "$@" ./...
status=$?

count() { grep -E "\"Action\":\"$1\"" "$json" | grep -cE "\"Test\":\"[^\"]*/$2\"" ; }
pg_pass=$(count pass postgres)
pg_skip=$(count skip postgres)
sq_pass=$(count pass sqlite)
echo
echo "embedded SQLite subtests passed: $sq_pass"
echo "PostgreSQL subtests passed:      $pg_pass"
if [ "$pg_skip" -gt 0 ]; then
	echo
	echo "!!! WARNING: $pg_skip PostgreSQL subtests were SKIPPED: no PostgreSQL binaries found."
	echo "!!! Install them (apt-get install -y postgresql) or set LC_TEST_POSTGRES_URL."
	grep -m1 -oE 'PostgreSQL NOT AVAILABLE[^"]*' "$json" || true
fi
exit "$status"
