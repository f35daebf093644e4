#!/usr/bin/env bash
# The project's own tests: set up, then the C tests of the guest, then the plugin's tests
# (unit tests and end-to-end tests that boot the real guest under QEMU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -C guest test
.venv/bin/pytest tests -p no:cacheprovider "$@"
