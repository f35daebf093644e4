#!/usr/bin/env bash
# Builds the wheel: the plugin with the QEMU boards, the reference guest (built here with
# make first: needs gcc, make and gnu-efi), its model and the suites (see setup.py).
#   bash scripts/build-wheel.sh          -> dist/pytest_baremetal-<version>-py3-none-any.whl
#   DIST=/tmp/out bash scripts/build-wheel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
DIST=${DIST:-dist}
mkdir -p guest/build
flock guest/build/.make.lock make -s -C guest   # one make at a time (parallel test runs)
rm -rf build/lib build/bdist.* ./*.egg-info
"$PY" -m pip wheel -q --no-deps -w "$DIST" .
ls -1t "$DIST"/pytest_baremetal-*.whl | head -1
