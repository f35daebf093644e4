#!/usr/bin/env bash
# The project's own tests: set up, then the C tests of the guest, then the plugin's tests
# (unit tests and end-to-end tests that boot the real guest under QEMU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -C guest test
make -s -C guest   # the reference guest's EFI application, once, before the workers start
# Two workers (this project's CI machine has 2 cores); a file's tests stay on one worker,
# so module-scoped boots and builds happen once. Serial: bash scripts/test.sh -n 0
.venv/bin/pytest tests -p no:cacheprovider -n 2 --dist loadfile "$@"
