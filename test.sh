#!/usr/bin/env bash
# Installs what the tests need (the official Node.js Cloud Tasks client, used as the reference contract and as a
# conformance peer; the infrastructure checks' parsers and the google provider's schema; Azurite for the payload store) and runs every test project. Ends with one line: "N passed, N failed, N skipped".
# A test that hangs is stopped after 5 minutes (--blame-hang-timeout) and its host's dump named; a test host that
# crashes or is aborted, and a test project that reports nothing, count as failures in that line.
set -euo pipefail
cd "$(dirname "$0")"

for package in tests/conformance tests/infra tests/azurite; do
  if [ ! -d "$package/node_modules" ] || [ "$package/package-lock.json" -nt "$package/node_modules" ]; then
    (cd "$package" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

status=0
dotnet test Bridge.sln --configuration Release --logger "trx" --logger "console;verbosity=minimal" --results-directory "$results" \
  --blame-hang-timeout 5m --blame-hang-dump-type mini "$@" || status=$?

passed=0; failed=0; skipped=0; reported=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  reported=$((reported + 1))
  counters="$(grep -o '<Counters [^>]*>' "$trx")"
  total=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters")
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + total - p - f))
  # A crashed, hung or aborted test host: its run is a failure even when no single test says so.
  aborted=$(grep -c -E 'Test host process crashed|The active test run was aborted|Aborting test run' "$trx" || true)
  if grep -q '<ResultSummary outcome="\(Aborted\|Error\|Timeout\)"' "$trx" || [ "$aborted" -gt 0 ]; then
    failed=$((failed + 1))
  fi
done

# Test projects whose host died before writing any result count as one failure each.
expected=$(grep -l '<IsTestProject>true</IsTestProject>' tests/*/*.csproj | wc -l)
if [ "$#" -eq 0 ] && [ "$reported" -lt "$expected" ]; then
  failed=$((failed + expected - reported))
fi

if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # the build or the test host failed before any test could report
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
