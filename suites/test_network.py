"""Network: the guest downloads its model and tokenizer over HTTP from a server on the host
(`bm_model_server`), verifies them, and generates as from the disk; every injected fault
ends in a `[net] fallback` that names it, and the guest still generates from the disk:

  status 404 / 500   reason=http_status      detail "HTTP 404" / "HTTP 500"
  close_at(0.5)      reason=short_body       detail "connection closed after <half> bytes"
  lie_length(+64)    reason=short_body       detail "connection closed after <size> bytes"
  stall              reason=timeout          detail "no data within <net_timeout_ms> ms"
  flip_byte          reason=digest_mismatch  detail "expected <sha256 of the file>"
  closed port        reason=refused

One boot per scenario (a TCG boot costs seconds): each fault scenario puts one fault on the
model and another on the tokenizer, which the guest reports separately."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Any

import pytest

from pytest_baremetal import netserve
from pytest_baremetal.netserve import FileServer

pytestmark = [
    pytest.mark.bm_requires("network"),
    pytest.mark.bm_interaction("script"),
    pytest.mark.bm_needs_events("net_info", "net_connect", "net_http", "download",
                                "net_done", "net_fallback", "gen_ids"),
]

FILES = ("model.bin", "tokenizer.bin")
RUN = {"bench": 0, "repeats": 1, "steps": 16}
NET_TIMEOUT_MS = 5000  # each connect and read; the guest waits longer for DHCP
RATE = 2_000_000  # bytes/s for the rate-limited download

# fault on the model, fault on the tokenizer, and the (reason, detail) each must produce
SCENARIOS: dict[str, tuple[netserve.Fault, netserve.Fault, Mapping[str, tuple[str, str]]]] = {
    "404-and-close": (
        netserve.status(404, "model.bin"), netserve.close_at(0.5, "tokenizer.bin"),
        {"model.bin": ("http_status", "HTTP 404"),
         "tokenizer.bin": ("short_body", "connection closed after {half} bytes")}),
    "500-and-stall": (
        netserve.status(500, "model.bin"), netserve.stall(120, 0.5, "tokenizer.bin"),
        {"model.bin": ("http_status", "HTTP 500"),
         "tokenizer.bin": ("timeout", f"no data within {NET_TIMEOUT_MS} ms")}),
    "flip-and-lie": (
        netserve.flip_byte(1000, "model.bin"), netserve.lie_length(64, "tokenizer.bin"),
        {"model.bin": ("digest_mismatch", "expected {sha256}"),
         "tokenizer.bin": ("short_body", "connection closed after {size} bytes")}),
}

Boot = Callable[..., Any]


def net_boot(bm_boot: Boot, board: Any, server: FileServer, **extra: Any) -> Any:
    """Boots with both files on the server: the model's digest from its `.sha256`
    companion, the tokenizer's from the configuration."""
    config = {**RUN, "net_timeout_ms": NET_TIMEOUT_MS,
              "model_url": server.guest_url("model.bin"),
              "tokenizer_url": server.guest_url("tokenizer.bin"),
              "tokenizer_sha256": server.digest("tokenizer.bin"), **extra}
    return bm_boot(board.name, **config)


def disk_ids(bm_boot: Boot, board: Any) -> list[int]:
    """The tokens of the same run from the disk (one boot, shared by the tests)."""
    return list(bm_boot(board.name, **RUN).generations()[0].ids)


def of_file(dut: Any, kind: str, name: str) -> list[Any]:
    return [e for e in dut.events(kind) if e.fields.get("file") == name]


def truthy(value: object) -> bool:
    return str(value).lower() in ("1", "true")


def size_of(server: FileServer, name: str) -> int:
    return (server.root / name).stat().st_size


def assert_generates_like_disk(dut: Any, bm_boot: Boot, board: Any,
                               bm_reference: Callable[[Any], Any]) -> None:
    gen = dut.generations()[0]
    check = bm_reference(dut).check(gen)
    assert check.ok, check.describe()
    assert gen.ids == disk_ids(bm_boot, board), "tokens differ from the boot from the disk"
    assert dut.wait_done().fields["status"] == "ok", dut.tail()


def test_download_succeeds_then_generation_matches(
        board: Any, bm_model_server: FileServer, bm_boot: Boot,
        bm_reference: Callable[[Any], Any]) -> None:
    server = bm_model_server
    dut = net_boot(bm_boot, board, server)
    info = dut.event("net_info")
    assert str(info.fields.get("ip", "")).startswith("10.0.2."), info.line
    assert not dut.events("net_fallback"), dut.events("net_fallback")[0].line
    for name, expected_from in (("model.bin", "url"), ("tokenizer.bin", "config")):
        size = size_of(server, name)
        connect = of_file(dut, "net_connect", name)
        assert connect and int(connect[0].fields["port"]) == server.port, connect
        http = of_file(dut, "net_http", name)[0]
        assert int(http.fields["status"]) == 200, http.line
        assert int(http.fields["content_length"]) == size, http.line
        done = of_file(dut, "net_done", name)[0]
        assert int(done.fields["bytes"]) == size, done.line
        assert done.fields["sha256"] == server.digest(name), done.line
        assert truthy(done.fields["verified"]), done.line
        assert done.fields["expected_from"] == expected_from, done.line
        progress = of_file(dut, "download", name)
        pcts = [int(e.fields["pct"]) for e in progress]
        assert pcts and pcts[-1] == 100, f"{name}: progress {pcts}"
        assert all(a < b for a, b in pairwise(pcts)), f"{name}: progress {pcts}"
        sizes = [int(e.fields["bytes"]) for e in progress]
        assert sizes == sorted(sizes) and sizes[-1] == size, f"{name}: bytes {sizes}"
        served = [r for r in server.log.for_path(name) if r.method == "GET"]
        assert [(r.status, r.sent) for r in served] == [(200, size)], server.log.text()
    assert [r.status for r in server.log.for_path("model.bin.sha256")] == [200]
    model = of_file(dut, "net_done", "model.bin")[0]
    dut.record_metric("download_mb_s", float(model.fields["mb_s"]), "MB/s")
    assert_generates_like_disk(dut, bm_boot, board, bm_reference)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_fault_falls_back_to_disk(
        scenario: str, board: Any, bm_model_server: FileServer, bm_boot: Boot,
        bm_reference: Callable[[Any], Any]) -> None:
    server = bm_model_server
    model_fault, tokenizer_fault, expected = SCENARIOS[scenario]
    server.set_faults(model_fault, tokenizer_fault)
    dut = net_boot(bm_boot, board, server)
    dut.wait_done()
    for name in FILES:
        size = size_of(server, name)
        reason, detail = expected[name]
        detail = detail.format(size=size, half=size // 2, sha256=server.digest(name))
        fallbacks = of_file(dut, "net_fallback", name)
        assert len(fallbacks) == 1, f"{name}: {[e.line for e in fallbacks]}"
        assert fallbacks[0].fields["reason"] == reason, fallbacks[0].line
        assert detail in str(fallbacks[0].fields["detail"]), fallbacks[0].line
        assert any(r.faults for r in server.log.for_path(name)), server.log.text()
    # the disk's files were loaded instead
    assert int(dut.event("model").fields["bytes"]) == size_of(server, "model.bin")
    assert int(dut.event("tokenizer").fields["bytes"]) == size_of(server, "tokenizer.bin")
    assert_generates_like_disk(dut, bm_boot, board, bm_reference)


def test_rate_limited_download_is_measured_and_a_closed_port_refused(
        board: Any, bm_model_server: FileServer, bm_boot: Boot) -> None:
    """The model at a limited rate; the tokenizer from a port bound but not listening."""
    server = bm_model_server
    server.set_faults(netserve.rate_limit(RATE, "model.bin"))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # held, not listening: connections are refused
        port = closed.getsockname()[1]
        dut = net_boot(bm_boot, board, server,
                       tokenizer_url=f"http://{server.guest_host}:{port}/tokenizer.bin")
        dut.wait_done()
    done = of_file(dut, "net_done", "model.bin")
    assert done, f"no download: {[e.line for e in dut.events('net_fallback')]}"
    mb_s = float(done[0].fields["mb_s"])
    assert 0.5 * RATE / 1e6 < mb_s <= 1.05 * RATE / 1e6, done[0].line
    assert truthy(done[0].fields["verified"]), done[0].line
    dut.record_metric("download_limited_mb_s", mb_s, "MB/s")
    refused = of_file(dut, "net_fallback", "tokenizer.bin")
    assert [e.fields["reason"] for e in refused] == ["refused"], [e.line for e in refused]
    assert dut.wait_done().fields["status"] == "ok", dut.tail()
