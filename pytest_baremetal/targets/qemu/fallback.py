"""Recognise an accelerator that exists but cannot run the guest (KVM, WHPX, HVF).

``classify`` turns QEMU's stderr, its last QMP status and whether the console printed
anything into a short reason such as ``kvm: failed to set MSR 0x10a``, or None when the
failure is not the accelerator's (then falling back to TCG would only hide a real bug).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIRMWARE_SILENT = "firmware printed nothing"


@dataclass(frozen=True)
class Signature:
    """A stderr pattern and the reason it stands for (``{0}`` is the first group)."""

    pattern: re.Pattern[str]
    reason: str

    def match(self, stderr: str) -> str | None:
        found = self.pattern.search(stderr)
        if found is None:
            return None
        groups = [g.strip() for g in found.groups() if g is not None]
        return self.reason.format(*groups) if groups else self.reason


def _sig(pattern: str, reason: str) -> Signature:
    return Signature(re.compile(pattern, re.IGNORECASE | re.MULTILINE), reason)


# Most specific first.
SIGNATURES: tuple[Signature, ...] = (
    _sig(r"WHPX: Failed to emulate MMIO access(?: with EmulatorReturnStatus: (\d+))?",
         "whpx: failed to emulate MMIO access"),
    _sig(r"WHPX: Failed to exec a virtual processor", "whpx: failed to exec a virtual processor"),
    _sig(r"WHPX: (?:No accelerator found|Failed to [^\n]*)", "whpx: {0}"),
    _sig(r"KVM internal error\. Suberror: (\d+)", "kvm: internal error (suberror {0})"),
    _sig(r"error: failed to set MSR (0x[0-9a-f]+)", "kvm: failed to set MSR {0}"),
    _sig(r"Could not access KVM kernel module: ([^\n]*)",
         "kvm: could not access KVM kernel module ({0})"),
    _sig(r"failed to initialize (kvm|whpx|hvf)(?::\s*([^\n]*))?", "{0}: failed to initialize"),
    _sig(r"-accel (\w+): invalid accelerator", "{0}: this QEMU was built without it"),
    _sig(r"invalid accelerator (\w+)", "{0}: this QEMU was built without it"),
    _sig(r"(kvm|whpx|hvf) (?:is )?not supported", "{0}: not supported on this host"),
    _sig(r"HV_ERROR|hv_vm_create[^\n]*failed", "hvf: Hypervisor.framework refused the VM"),
)

STUCK_STATUSES = ("internal-error", "guest-panicked", "io-error")


def classify(stderr: str, qmp_status: str | None, console_seen: bool) -> str | None:
    """The accelerator failure these signs show, or None.

    ``qmp_status`` is QEMU's last ``query-status`` (None if it exited); ``console_seen``
    is False when the firmware printed nothing before the firmware timeout.
    """
    for signature in SIGNATURES:
        reason = signature.match(stderr)
        if reason is not None:
            if qmp_status in STUCK_STATUSES and "internal error" not in reason:
                reason += f" (QEMU status {qmp_status})"
            return reason
    if qmp_status in STUCK_STATUSES:
        return f"QEMU stopped the guest: status {qmp_status}"
    if qmp_status == "paused" and not console_seen:
        return "QEMU paused the guest before the firmware printed anything"
    if not console_seen:
        return f"{FIRMWARE_SILENT} before the firmware timeout"
    return None
