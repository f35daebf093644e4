"""The reference guest under QEMU on bad input: an `[error]` line naming the file and the
problem, then `[done] status=error`, then power-off. Never a hang.

Broken files sit on the same EFI partition as the good ones; `bm_config(model=...)` points
the guest at them, so one pytest run covers every case (one short boot each)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "guest" / "models" / "tiny"

pytestmark = pytest.mark.slow

GUEST_TESTS = '''
import pytest

CASES = {
    "truncated": dict(model="trunc.bin", where="model", file="trunc.bin", reason="truncated"),
    "inconsistent": dict(model="badhdr.bin", where="model", file="badhdr.bin",
                         reason="inconsistent"),
    "missing_tokenizer": dict(tokenizer="nope.bin", where="tokenizer", file="nope.bin",
                              reason="missing"),
    "bad_cfg_value": dict(steps="many", where="cfg", file="run.cfg", reason="bad_value"),
}


@pytest.mark.parametrize("case", CASES)
def test_error_is_reported_and_the_machine_stops(case, bm_boot, board):
    expected = dict(CASES[case])
    settings = {k: expected.pop(k) for k in ("model", "tokenizer", "steps") if k in expected}
    dut = bm_boot(board.name, bench=0, **settings)
    error = dut.event("error", timeout=120)
    for key, value in expected.items():
        assert error.fields[key] == value, error.line
    assert error.fields["detail"], error.line
    assert dut.wait_done(timeout=60).fields["status"] == "error"
    assert dut.wait_power_off(timeout=60) == 0
    assert not dut.console.find_events("gen_begin"), "generation ran after the error"
'''


def test_guest_reports_bad_input(pytester: pytest.Pytester, tmp_path: Path) -> None:
    efi = ROOT / "guest" / "build" / "BOOTX64.EFI"
    if shutil.which("make") is None or shutil.which("qemu-system-x86_64") is None:
        pytest.skip("needs make and qemu-system-x86_64 (bash scripts/setup.sh)")
    from pytest_baremetal.build_under_test import reference_guest

    reference_guest(ROOT)  # builds guest/build/BOOTX64.EFI when missing or stale
    good = (MODELS / "model.bin").read_bytes()
    (tmp_path / "trunc.bin").write_bytes(good[: len(good) // 2])
    header = list(struct.unpack_from("<7i", good))
    header[3] = 7  # n_heads that does not divide dim
    (tmp_path / "badhdr.bin").write_bytes(struct.pack("<7i", *header) + good[28:])
    pytester.makepyfile(test_errors=GUEST_TESTS)
    result = pytester.runpytest_subprocess(
        "--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}", f"--bm-efi={efi}",
        f"--bm-file=model.bin={MODELS / 'model.bin'}",
        f"--bm-file=tokenizer.bin={MODELS / 'tokenizer.bin'}",
        f"--bm-file=trunc.bin={tmp_path / 'trunc.bin'}",
        f"--bm-file=badhdr.bin={tmp_path / 'badhdr.bin'}",
        f"--bm-profile={ROOT / 'pytest_baremetal' / 'profiles' / 'reference.yaml'}",
        f"--bm-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(passed=4)
