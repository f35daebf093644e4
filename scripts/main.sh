#!/usr/bin/env bash
# The main job: set up, build the reference guest, boot it under QEMU TCG, run the suites,
# and write the results and report under reports/. Extra arguments go to pytest,
# e.g. `bash scripts/main.sh --target=qemu-tcg-noavx`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -C guest image PYTHON="$PWD/.venv/bin/python"
args=("$@")
[ "${#args[@]}" -gt 0 ] || args=(--target=qemu-tcg)
status=0
.venv/bin/pytest "${args[@]}" --junitxml=reports/junit.xml \
  --alluredir=reports/allure-results --clean-alluredir || status=$?
bash scripts/report.sh || { [ "$status" -ne 0 ] || status=1; }
echo "main: console logs in reports/logs/, JUnit XML in reports/junit.xml"
exit "$status"
