"""Boots shared between tests: one per board and guest configuration, failures cached."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pytest_baremetal.dut import Dut
from pytest_baremetal.errors import BaremetalError, EarlierBootFailed
from pytest_baremetal.guestconfig import GuestConfig

BootKey = tuple[str, GuestConfig]
Booter = Callable[[str, GuestConfig], Dut]


@dataclass
class FailedBoot:
    error: BaseException
    first_test: str


class BootPool:
    """Caches boots by (board, config) and keeps at most `live_limit` machines running.

    A boot that failed is not retried: later tests of the same key fail at once with the
    first error, so one broken boot does not become a timeout in every later test. A rerun
    of the test that saw a lab fault (pytest-rerunfailures) boots again.
    """

    def __init__(self, booter: Booter, live_limit: int = 1) -> None:
        self._booter = booter
        self._live_limit = live_limit
        self._duts: OrderedDict[BootKey, Dut] = OrderedDict()
        self._failed: dict[BootKey, FailedBoot] = {}
        self.boot_count = 0

    def get(self, board: str, config: GuestConfig, requester: str = "") -> Dut:
        key = (board, config)
        failed = self._failed.get(key)
        if failed is not None and not (_retryable(failed.error) and requester
                                       and requester == failed.first_test):
            raise EarlierBootFailed(f"boot of {board} [{config.label()}] failed earlier "
                                    f"(in {failed.first_test}): {failed.error}",
                                    failed.error) from failed.error
        self._failed.pop(key, None)
        dut = self._duts.get(key)
        if dut is not None:
            self._duts.move_to_end(key)
            return dut
        self._make_room()
        try:
            self.boot_count += 1
            dut = self._booter(board, config)
        except Exception as error:
            self._failed[key] = FailedBoot(error, requester or "an earlier test")
            raise
        self._duts[key] = dut
        return dut

    def fresh(self, board: str, config: GuestConfig) -> Dut:
        """A boot for one test only (function scope); the caller closes it."""
        self.boot_count += 1
        return self._booter(board, config)

    def _make_room(self) -> None:
        # Finished runs cost nothing to keep; only machines still powered count.
        live = [k for k, d in self._duts.items() if d.power.is_on()]
        while len(live) >= self._live_limit:
            self._retire(self._duts[live.pop(0)])

    @staticmethod
    def _retire(dut: Dut) -> None:
        """Lets a scripted run finish (its later tests still read it), then powers off.

        An interactive boot is over when it is idle at its prompt: it is powered off at once.
        A boot already judged hung fails its wait at once (the console remembers it)."""
        if not dut.interactive:
            with contextlib.suppress(Exception):
                dut.wait_done()
                dut.wait_power_off()
        dut.power.off()

    def close(self) -> None:
        errors: list[BaseException] = []
        for dut in self._duts.values():
            try:
                dut.close()
            except Exception as error:  # close every machine even if one fails
                errors.append(error)
        self._duts.clear()
        if errors:
            raise errors[0]

    def __enter__(self) -> BootPool:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _retryable(error: BaseException) -> bool:
    return isinstance(error, BaremetalError) and error.retryable
