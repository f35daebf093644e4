#!/usr/bin/env bash
# Renders the Allure results of the last run into one HTML file, with history.
#   bash scripts/report.sh [RESULTS_DIR] [REPORT_DIR]
# defaults: reports/allure-results -> reports/allure-report/index.html; the history of
# every run rendered so far is kept in reports/allure-history.jsonl (trends from the second
# run on). Needs only Node and the npm package `allure` installed by scripts/setup.sh
# (`npm ci`); works offline. The report opens as a file or served over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."

results=${1:-${ALLURE_RESULTS:-reports/allure-results}}
report=${2:-${ALLURE_REPORT:-reports/allure-report}}
history=${ALLURE_HISTORY:-reports/allure-history.jsonl}
allure=node_modules/.bin/allure

if [ ! -x "$allure" ]; then
  echo "report: $allure is missing; run: npm ci   (or bash scripts/setup.sh)" >&2
  exit 2
fi
if [ ! -d "$results" ] || [ -z "$(ls -A "$results" 2>/dev/null)" ]; then
  echo "report: no Allure results in $results; run pytest with --alluredir=$results" >&2
  exit 2
fi
mkdir -p "$(dirname "$history")"
rm -rf "$report"
start=$(date +%s.%N)
ALLURE_RESULTS="$results" ALLURE_REPORT="$report" ALLURE_HISTORY="$history" \
  "$allure" generate --config scripts/allurerc.mjs --output "$report" "$results" >/dev/null
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "report: $(cd "$report" && pwd)/index.html (rendered in ${took} s; history in $history)"
