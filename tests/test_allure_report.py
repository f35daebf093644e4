"""Allure reports: results of a session with stand-in boots, then the rendered report in Chromium.

The stand-in boots are real ``Dut`` objects over real ``Console`` objects fed by a scripted
transport (a recorded-looking transcript of the reference guest), so the reporter reads
exactly what it reads in a real run. The browser test renders the results with Allure 3
(``scripts/report.sh``), serves them on 127.0.0.1 and drives Debian's headless Chromium
over the DevTools protocol (a pipe, no port).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("allure_pytest")

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ALLURE = ROOT / "node_modules" / ".bin" / "allure"

TRANSCRIPT = (
    b"\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H"
    b"BdsDxe: loading Boot0001 \"UEFI QEMU HARDDISK\"\r\n"
    b"BdsDxe: starting Boot0001 \"UEFI QEMU HARDDISK\"\r\n"
    b"[boot] name=bm-ref-guest version=0.1.0 build=3f2a9c1-20250101 platform=uefi "
    b"fw_vendor=\"EDK II\" fw_revision=0x10000 uefi=2.70\r\r\n"
    b"[cfg] mode=script model=stories260K.bin tokenizer=tok512.bin prompt=\"Once upon\" steps=16 "
    b"seed=7 temperature=0.000 topp=0.900 repeats=2 kernel=auto bench=0 bench_runs=5 "
    b"slowdown_pct=0.0\r\r\n"
    b"[cpu] vendor=GenuineIntel family=6 model=94 sse2=1 avx=1 avx2=1 fma=1 xsave=1 osxsave=0\r\r\n"
    b"[model] file=stories260K.bin bytes=1185376 dim=64 hidden_dim=172 layers=5 heads=8 "
    b"kv_heads=4 vocab=512 seq_len=512 shared_classifier=1 params=296448\r\r\n"
    b"[perf] repeat=1 prefill_tokens=3 prefill_ms=1.500 prefill_tok_s=2000.0 decode_tokens=16 "
    b"decode_ms=640.0 decode_tok_s=25.00 first_token_ms=2.100\r\r\n"
    b"[perf] repeat=2 prefill_tokens=3 prefill_ms=1.400 prefill_tok_s=2142.9 decode_tokens=16 "
    b"decode_ms=630.0 decode_tok_s=25.40 first_token_ms=2.000\r\r\n"
    b"[perf] summary repeats=2 prefill_tok_s_median=2071.4 decode_tok_s_median=25.20 "
    b"decode_tok_s_min=25.00 decode_tok_s_max=25.40\r\r\n"
)
DONE = b"[done] status=ok\r\r\n"
CRASH = (b"!!!! X64 Exception Type - 0D(#GP - General Protection)  CPU Apic ID - 00000000 !!!!\r\n"
         b"RIP  - 000000003E6A1F2C, CS  - 0000000000000038, RFLAGS - 0000000000010206\r\n")

CONFTEST = '''
import os, time
from pathlib import Path
import pytest
from pytest_baremetal import reporting
from pytest_baremetal.targets.qemu.spec import qemu_board
from pytest_baremetal.console import Console
import shlex
from pytest_baremetal.dut import BootDescription, BootInfo, Dut
from pytest_baremetal.build_under_test import BuildUnderTest
from pytest_baremetal.bus import EventBus
from pytest_baremetal.plugin import CurrentTest
from pytest_baremetal.errors import BootError, ConsoleClosed
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import load_profile
from pytest_baremetal.session import REFERENCE_PROFILE

HEAD = TRANSCRIPT.split(b"[cfg]")[0]
SCRIPTS = {"ok": TRANSCRIPT + DONE, "crash": HEAD + CRASH, "quiet": HEAD}


class Scripted:
    """Hands out the transcript in small chunks; then end of stream, or silence if `hang`."""
    def __init__(self, data, hang):
        self.chunks = [data[i:i + 97] for i in range(0, len(data), 97)]
        self.hang = hang
    def read(self, max_bytes, timeout):
        if self.chunks:
            return self.chunks.pop(0)
        if self.hang:
            time.sleep(min(timeout, 0.05))
            return b""
        raise ConsoleClosed("scripted end")
    def write(self, data):
        pass
    def close(self):
        pass


class Power:
    def wait_off(self, timeout): return 0
    def off(self): pass
    def is_on(self): return False


BUS = EventBus()


def pytest_configure(config):
    # what plugin.py's pytest_configure wires (the plugin itself is off: -p no:baremetal)
    current = CurrentTest()
    config.pluginmanager.register(current, "baremetal-current-test")
    BUS.subscribe(current.on_message)
    reporting.enable(config, BUS)


def pytest_sessionfinish(session):
    for dut in _BOOTS.values():
        dut.close()


_BOOTS = {}


def boot(tmp, name, script, fallback=None):
    if script in _BOOTS:
        return _BOOTS[script]
    log_dir = tmp / f"00{len(_BOOTS) + 1}-{name}"
    log_dir.mkdir(parents=True)
    (log_dir / "qemu.stderr").write_text(
        "qemu-system-x86_64: warning: TCG doesn't support requested feature: CPUID.01H:ECX.vmx\\n")
    profile = load_profile(REFERENCE_PROFILE)
    started = time.monotonic()
    console = Console(Scripted(SCRIPTS[script], hang=script == "quiet"), log_dir, profile,
                      "console", quiet_timeout=0.5).start()
    board = qemu_board(name, cpu="Skylake-Client", accel="kvm")
    argv = ["qemu-system-x86_64", "-S", "-no-reboot", "-machine", "pc", "-accel", "tcg",
            "-cpu", "Skylake-Client", "-m", "1024", "-bios", "/usr/share/qemu/OVMF.fd",
            "-drive", f"file={log_dir}/disk.img,format=raw,if=virtio", "-net", "none"]
    description = BootDescription(
        "QEMU command line", shlex.join(argv) + "\\n", command=tuple(argv),
        facts={"qemu": "QEMU 7.2.0 (qemu-system-x86_64)", "firmware": "/usr/share/qemu/OVMF.fd"},
        labels={"cpu": "Skylake-Client"})
    info = BootInfo(board=name, accelerator="tcg", requested_accelerator="kvm",
                    fallback_reason=fallback, description=description, log_dir=log_dir,
                    started_at=started,
                    first_output_s=0.4,
                    attempts=["kvm: failed to set MSR 0x10a"] if fallback else [])
    (log_dir / "app.efi").write_bytes(b"MZ")
    build = BuildUnderTest(efi=log_dir / "app.efi")
    dut = Dut(board, GuestConfig(), console, Power(), profile, info, build, bus=BUS)
    _BOOTS[script] = dut
    return dut


@pytest.fixture(scope="session")
def logs(tmp_path_factory):
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(params=["qemu-tcg"])
def target(request):
    return request.param


def _use(request, dut):
    request.node.user_properties.append(("bm_board", dut.board.name))
    request.node.stash.setdefault(reporting.DUTS_KEY, []).append(dut)
    return dut


@pytest.fixture
def dut(request, target, logs):
    return _use(request, boot(logs, target, "ok"))


@pytest.fixture
def crashing_dut(request, logs):
    return _use(request, boot(logs, "qemu-tcg-noavx", "crash",
                              fallback="kvm: failed to set MSR 0x10a"))


@pytest.fixture
def quiet_dut(request, logs):
    return _use(request, boot(logs, "qemu-kvm", "quiet", fallback=None))


@pytest.fixture(scope="session")
def perf(request, tmp_path_factory):
    """A PerfTracker over a history with three earlier passing boots of qemu-tcg, wired the way
    plugin.py's bm_perf wires it."""
    from dataclasses import replace
    from datetime import timedelta
    from pytest_baremetal import history
    from pytest_baremetal.perf_tracking import PerfTracker

    url = str(tmp_path_factory.mktemp("history") / "history.sqlite")
    store = history.open_store(url)
    for days, tok_s in ((3, (25.0, 25.4)), (2, (24.9, 25.3)), (1, (25.1, 25.5))):
        context = history.collect_context(
            board="qemu-tcg", accelerator="tcg", cpu_model="Skylake-Client (GenuineIntel 6/94)",
            model_digest="stories260K.bin", session=f"earlier-{days}")
        context = replace(context, started_at=context.started_at - timedelta(days=days))
        run = history.record_boot(store, context, [{"repeat": i + 1, "decode_tok_s": v}
                                                   for i, v in enumerate(tok_s)])
        history.finish_run(store, run, passed=True)
    store.close()
    tracker = PerfTracker(url, None)
    tracker.attach_trend = reporting.trend_attacher(request.config)
    yield tracker
    tracker.close()


@pytest.fixture
def broken_accelerator(request):
    raise BootError("qemu-kvm: accelerator kvm cannot run the guest: kvm: failed to set MSR 0x10a")
'''

TESTS = '''
import os
import pytest


def test_banner_names_the_build(dut):
    boot = dut.event("boot")
    assert boot.fields["build"] == "3f2a9c1-20250101"


def test_tok_s_is_measured(dut):
    dut.wait_done()
    summary = dut.event("perf_summary")
    dut.record_metric("decode_tok_s", summary.fields["decode_tok_s_median"]
                      + float(os.environ.get("TOK_S_SHIFT", "0")), "tok/s")
    assert summary.fields["decode_tok_s_median"] > 1


def test_tok_s_against_history(dut, perf):
    verdict = perf.check(dut, metric="decode_tok_s")
    # two repeats against six cannot be significant: inconclusive, and it says so
    assert verdict.status == "inconclusive" and not verdict.failed, verdict.describe()


def test_generated_text_is_wrong(dut):
    assert dut.event("cfg").fields["steps"] == 32, "the guest generated the wrong number of tokens"


def test_tok_s_regression(dut):
    dut.record_metric("decode_tok_s", 25.2, "tok/s")
    from pytest_baremetal.errors import PerformanceRegression
    raise PerformanceRegression("decode tok/s 25.2 vs 29.4 (-14.3%, 95% CI -16.0..-12.9%): "
                                "regression")


def test_guest_crashes(crashing_dut):
    crashing_dut.event("done", timeout=20)


def test_guest_hangs(quiet_dut):
    quiet_dut.console.expect_event("done", 20)


def test_lab_fault(broken_accelerator):
    pass
'''


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pytest project with the stand-in boots and one test per failure category."""
    where = tmp_path_factory.mktemp("session")
    header = "\n".join(f"{name} = {globals()[name]!r}" for name in ("TRANSCRIPT", "DONE", "CRASH"))
    (where / "conftest.py").write_text(header + "\n" + CONFTEST)
    (where / "test_guest.py").write_text(TESTS)
    return where


def run_session(where: Path, results: Path, *extra: str,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the stand-in session in its own process (allure keeps global state)."""
    argv = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-p", "no:baremetal",
            "-p", "no:cacheprovider", f"--alluredir={results}", "--clean-alluredir",
            f"--junitxml={results.with_suffix('.junit.xml')}", "-q", *extra]
    return subprocess.run(argv, cwd=where, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})}, check=False)


def load_results(results: Path) -> dict[str, dict[str, Any]]:
    """Allure result files by test name."""
    found = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text())
        found[data["name"]] = data
    return found


def labels_of(result: dict[str, Any]) -> dict[str, str]:
    return {label["name"]: label["value"] for label in result["labels"]}


def attachment(results: Path, result: dict[str, Any], name: str) -> str:
    found = [a for a in result["attachments"] if a["name"] == name]
    assert found, f"no attachment {name!r} in {[a['name'] for a in result['attachments']]}"
    return (results / str(found[0]["source"])).read_text(errors="replace")


@pytest.fixture(scope="module")
def results(session_dir: Path) -> Path:
    out = session_dir / "allure-results"
    done = run_session(session_dir, out)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "4 failed, 3 passed, 1 error" in done.stdout, done.stdout
    return out


def test_results_carry_labels_steps_and_attachments(results: Path) -> None:
    by_name = load_results(results)
    banner = by_name["test_banner_names_the_build[qemu-tcg]"]
    labels = labels_of(banner)
    assert labels["board"] == "qemu-tcg" and labels["target"] == "qemu"
    assert labels["accelerator"] == "tcg" and "fallback" not in labels
    assert labels["build"] == "bm-ref-guest 0.1.0 (3f2a9c1-20250101)"
    assert "failure" not in labels
    # labels come from what the guest printed by the end of the test: this one waited for [done]
    full = labels_of(by_name["test_tok_s_is_measured[qemu-tcg]"])
    assert full["cpu"] == "Skylake-Client (GenuineIntel family 6 model 94)"
    assert full["model"] == "stories260K.bin (296448 params)"
    raw = attachment(results, banner, "console qemu-tcg (raw, timestamped)")
    assert "\x1b[=3h" in raw and raw.splitlines()[0][:13].replace(".", "").strip().isdigit()
    cleaned = attachment(results, banner, "console qemu-tcg")
    assert "\x1b" not in cleaned and "\r" not in cleaned
    assert cleaned.splitlines()[2].startswith("[boot] name=bm-ref-guest")
    argv = attachment(results, banner, "QEMU command line (qemu-tcg)")
    assert argv.startswith("qemu-system-x86_64 -S -no-reboot") and "-cpu Skylake-Client" in argv
    assert "TCG doesn't support" in attachment(results, banner, "qemu.stderr (qemu-tcg)")
    # the banner test ends before the run does: the whole run is on a test that waited for it
    ended = by_name["test_tok_s_is_measured[qemu-tcg]"]
    events = json.loads(attachment(results, ended, "events qemu-tcg"))
    assert [e["kind"] for e in events][:3] == ["loader", "loader", "boot"]
    assert events[-1] == {**events[-1], "kind": "done", "fields": {"status": "ok"}}
    figures = attachment(results, ended, "figures qemu-tcg")
    assert figures.startswith("event,field,value,unit,time_s,name\n")
    assert "perf,decode_tok_s,25.4,tok/s," in figures
    assert "perf_summary,decode_tok_s_median,25.2,tok/s," in figures
    steps = [s["name"] for s in banner["steps"]]
    assert steps[:2] == ["power on qemu-tcg (tcg)", "boot: firmware hands over, banner printed"]
    # the test's own wait is recorded live; the "run to [done]" step is added only when the
    # boot had ended by the time this (first) test reported, which depends on timing
    assert "await boot" in steps
    assert set(steps[2:]) <= {"await boot", "run to [done] status=ok"}, steps
    power_on = banner["steps"][0]
    assert power_on["stop"] - power_on["start"] == 400  # first output 0.4 s after power-on
    # the second test on the same boot says so
    second = by_name["test_tok_s_is_measured[qemu-tcg]"]
    assert {"name": "boot", "value": "shared: booted for an earlier test"} in \
        second["steps"][0]["parameters"]


def test_figures_are_parameters_outside_the_history_id(results: Path, session_dir: Path) -> None:
    tok_s = load_results(results)["test_tok_s_is_measured[qemu-tcg]"]
    param = next(p for p in tok_s["parameters"] if p["name"] == "decode_tok_s")
    assert param["value"] == "25.2" and param["excluded"] is True
    assert "decode_tok_s,25.2,tok/s" in attachment(results, tok_s, "figures recorded")
    again = run_session(session_dir, session_dir / "again", "-k", "tok_s_is_measured",
                        env={"TOK_S_SHIFT": "3"})
    assert again.returncode == 0, again.stdout
    (second,) = load_results(session_dir / "again").values()
    assert next(p for p in second["parameters"] if p["name"] == "decode_tok_s")[
        "value"] == "28.2"
    assert second["historyId"] == tok_s["historyId"]  # trends join the two runs


def test_trend_chart_is_attached_after_the_verdict(results: Path) -> None:
    """PerfTracker.check draws the board's history (four boots) and attaches the PNG."""
    perf = load_results(results)["test_tok_s_against_history[qemu-tcg]"]
    assert perf["status"] == "passed"
    (chart,) = [a for a in perf["attachments"] if a["name"] == "trend decode_tok_s"]
    assert chart["type"] == "image/png"
    png = (results / chart["source"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert int.from_bytes(png[16:20], "big") == 1000  # 10 in at 100 dpi, as history plot draws
    param = next(p for p in perf["parameters"] if p["name"] == "decode_tok_s")
    assert param["value"] == "25.2"  # the median of the two repeats, 25.0 and 25.4
    verdict = next(p for p in perf["parameters"] if p["name"] == "decode_tok_s verdict")
    text = attachment(results, perf, "verdict decode_tok_s")
    assert text.startswith("decode tok/s 25.2") and verdict["value"] == "'inconclusive'"
    assert "power:" in text or "no baseline" in text
    others = [a["name"] for r in load_results(results).values() if r["name"] != perf["name"]
              for a in r.get("attachments", [])]
    assert "trend decode_tok_s" not in others  # only the test that asked for a verdict


def test_failures_fall_into_categories(results: Path) -> None:
    by_name = load_results(results)
    expected = {
        "test_generated_text_is_wrong[qemu-tcg]": ("failed", "Wrong output"),
        "test_tok_s_regression[qemu-tcg]": ("failed", "Performance regression"),
        "test_guest_crashes": ("broken", "Guest crash"),
        "test_guest_hangs": ("broken", "Guest hang"),
        "test_lab_fault": ("broken", "Lab or infrastructure fault"),
    }
    for name, (status, category) in expected.items():
        result = by_name[name]
        assert (result["status"], labels_of(result).get("failure")) == (status, category), name
    crash = by_name["test_guest_crashes"]
    assert "X64 Exception Type" in crash["statusDetails"]["message"]
    assert labels_of(crash)["board"] == "qemu-tcg-noavx"
    assert labels_of(crash)["fallback"] == "kvm -> tcg: kvm: failed to set MSR 0x10a"
    categories = json.loads((results / "categories.json").read_text())
    assert [c["name"] for c in categories] == ["Build does not boot",
                                               "Lab or infrastructure fault", "Guest crash",
                                               "Guest hang", "Performance regression",
                                               "Wrong output"]


def test_environment_and_junit(results: Path) -> None:
    facts = dict(line.split("=", 1) for line in
                 (results / "environment.properties").read_text().splitlines())
    assert {"host", "host.os", "python", "pytest-baremetal", "boards"} <= set(facts)
    assert facts["boards"] == "qemu-tcg (tcg), qemu-tcg-noavx (tcg), qemu-kvm (tcg)"
    assert facts["qemu"] == "QEMU 7.2.0 (qemu-system-x86_64)"  # from the boot, never re-run
    assert facts["firmware"].startswith("/usr/share/qemu/OVMF.fd")
    junit = results.with_suffix(".junit.xml").read_text()
    assert '<property name="decode_tok_s" value="25.2" />' in junit
    # the verdict reaches JUnit over the bus too, like the Allure parameter
    assert '<property name="decode_tok_s_verdict" value="inconclusive" />' in junit


# -- the rendered report, in a browser ----------------------------------------------------

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars"]


# Clicks the arrow of every closed group of the tree; reports what is open and each test's
# groups (the titles of the sections enclosing it, outermost first).
EXPAND_TREE = """(() => {
  const byId = (el, id) => [...el.children].find(c => c.dataset.testid === id);
  const sections = [...document.querySelectorAll('[data-testid=tree-section]')];
  const closed = sections.filter(s => !byId(s.parentElement, 'tree-content'));
  closed.forEach(s => s.querySelector('[data-testid=tree-arrow]').click());
  const leaves = [...document.querySelectorAll('[data-testid=tree-leaf]')].map(leaf => {
    const path = [];
    for (let el = leaf.parentElement; el; el = el.parentElement) {
      const head = byId(el, 'tree-section');
      if (head) path.unshift(head.querySelector('[data-testid=tree-section-title]').innerText);
    }
    return [leaf.querySelector('[data-testid=tree-leaf-title]').innerText, path];
  });
  return {sections: sections.length, closed: closed.length, leaves};
})()"""

# Opens the attachment NAME (clicks its header once) and returns what it renders: the text
# of a text attachment, or whether an image attachment's picture has loaded.
OPEN_ATTACHMENT = """(() => {
  const all = [...document.querySelectorAll('[data-testid=test-result-attachment]')];
  const box = all.find(a => [...a.querySelectorAll(
      '[data-testid=test-result-attachment-header] *')].some(e => e.innerText === NAME));
  if (!box) return null;
  const header = box.querySelector('[data-testid=test-result-attachment-header]');
  if (!box.dataset.bmOpened) {  // the header's first button toggles the attachment
    box.dataset.bmOpened = '1'; (header.querySelector('button') || header).click(); return null;
  }
  box.scrollIntoView({block: 'start'});
  const img = box.querySelector('img');
  const body = [...box.children].filter(c => c !== header).map(c => c.innerText).join('\\n');
  return {text: body.trim(), image: !!(img && img.complete && img.naturalWidth > 0)};
})()"""


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000) -> None:
        to_child, self._to_child = os.pipe()
        self._from_child, from_child = os.pipe()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]

        def fds() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False,
            preexec_fn=fds, start_new_session=True)
        for fd in (to_child, from_child, *high):
            os.close(fd)
        self._buffer = b""
        self._next = 0
        self.errors: list[str] = []  # JavaScript exceptions and console errors of the page
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width,
                  height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium went away during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("method") == "Runtime.exceptionThrown":
                details = reply["params"]["exceptionDetails"]
                self.errors.append(str(details.get("exception", {}).get("description")
                                       or details.get("text")))
            elif reply.get("method") == "Runtime.consoleAPICalled" and \
                    reply["params"]["type"] in ("error", "warning"):
                self.errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                            for a in reply["params"]["args"]))
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", session=True, expression=expression,
                          returnByValue=True, awaitPromise=True)
        return reply["result"].get("value")

    def _poll(self, expression: str) -> Any:
        """``evaluate``, or None while a navigation replaces the page's JavaScript context."""
        try:
            return self.evaluate(expression)
        except RuntimeError:
            if self.proc.poll() is not None:
                raise
            return None

    def goto(self, url: str, timeout: float = 30.0) -> None:
        """Navigates to ``url`` and waits until that document has loaded."""
        self.call("Page.navigate", session=True, url=url)
        self._until(lambda: self._poll("[location.href, document.readyState]") == [url, "complete"],
                    f"the page {url} to load", timeout)

    def _until(self, ready: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() >= deadline:
                text = self._poll("document.body ? document.body.innerText : ''") or ""
                raise AssertionError(f"timed out waiting for {what}; the page shows:\n"
                                     f"{str(text)[:3000]}\npage errors: {self.errors}")
            time.sleep(0.1)

    def wait_text(self, *needles: str, timeout: float = 30.0) -> str:
        """The page's visible text once it contains every needle."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self._poll("document.body ? document.body.innerText : ''") or ""
            if all(n in text for n in needles):
                return str(text)
            time.sleep(0.2)
        missing = [n for n in needles if n not in text]
        raise AssertionError(f"page never showed {missing}; it shows:\n{text[:3000]}\n"
                             f"page errors: {self.errors}")

    def tree(self, timeout: float = 30.0) -> dict[str, list[str]]:
        """Opens every group of the report's test tree; returns each test's groups, outermost
        first. (Allure opens only the groups holding failures: an all-green board is closed.)"""
        found: dict[str, Any] = {}

        def opened() -> bool:
            state = self._poll(EXPAND_TREE)
            if not state:
                return False
            settled = state["closed"] == 0 and state["leaves"] and state == found.get("last")
            found["last"] = state
            return bool(settled)

        self._until(opened, "the test tree to open", timeout)
        return {str(name): [str(p) for p in path] for name, path in found["last"]["leaves"]}

    def open_test(self, name: str, timeout: float = 30.0) -> str:
        """Clicks the test ``name`` in the opened tree; the test page's text once it shows."""
        self._on_text(name, "el.closest('[data-testid=tree-leaf]').click()")
        return self.wait_text(name, "Labels", "Test body", timeout=timeout)

    def open_attachment(self, name: str, timeout: float = 30.0) -> str:
        """Opens the attachment ``name`` of the test page shown; its rendered content's text."""
        script = OPEN_ATTACHMENT.replace("NAME", json.dumps(name))
        content: dict[str, Any] = {}

        def shown() -> bool:
            state = self._poll(script)
            content["last"] = state
            return isinstance(state, dict) and bool(state.get("text") or state.get("image"))

        self._until(shown, f"the attachment {name!r} to open", timeout)
        result: dict[str, Any] = content["last"]
        return str(result.get("text") or "")

    def _on_text(self, text: str, action: str) -> None:
        """Runs ``action`` (JS on ``el``) on the innermost element whose text is ``text``."""
        done = self.evaluate(
            "(() => { const all = [...document.querySelectorAll('body *')].filter("
            f"e => e.textContent.trim() === {json.dumps(text)});"
            " const el = all.find(e => ![...e.children].some(c => all.includes(c)));"
            f" if (!el) return false; {action}; return true; }})()")
        assert done, f"no element with the text {text!r}"

    def click_text(self, text: str) -> None:
        self._on_text(text, "el.click()")

    def scroll_to_text(self, text: str) -> None:
        self._on_text(text, "el.scrollIntoView({block: 'start'})")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=10)
        os.close(self._to_child)
        os.close(self._from_child)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    chromium = Chromium(tmp_path / "chromium-profile")
    try:
        yield chromium
    finally:
        chromium.close()
    assert chromium.proc.poll() is not None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (a free port), stopped at the end."""
    folder = tmp_path / "allure-report"
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert not thread.is_alive()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def render(results: Path, report: Path, history: Path) -> float:
    """scripts/report.sh into ``report`` with ``history``; returns the seconds it took."""
    start = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "scripts" / "report.sh"), str(results), str(report)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "ALLURE_HISTORY": str(history)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"report: {report}/index.html" in done.stdout
    return time.monotonic() - start


@pytest.mark.skipif(not ALLURE.exists(), reason="npm package allure not installed (npm ci)")
def test_report_in_a_browser(results: Path, session_dir: Path, browser: Chromium,
                             served: tuple[Path, str], tmp_path: Path) -> None:
    report, url = served
    history = tmp_path / "allure-history.jsonl"
    render(results, report, history)
    seconds = render(results, report, history)  # a second run: history has two entries
    print(f"report rendered in {seconds:.1f} s")
    assert len(history.read_text().splitlines()) == 2
    assert [p.name for p in report.iterdir() if p.suffix == ".html"] == ["index.html"]

    # the overview lists the tests, grouped by board
    browser.goto(url + "index.html")
    tree = browser.tree()
    assert tree["test_banner_names_the_build[qemu-tcg]"][0] == "qemu-tcg"
    assert tree["test_guest_crashes"][0] == "qemu-tcg-noavx"
    assert tree["test_guest_hangs"][0] == "qemu-kvm"
    assert "test_lab_fault" in tree  # it never got a boot: no board group
    browser.screenshot(tmp_path / "overview.png")

    # a test page: its labels, the tok/s figure, and the console attachment opened
    page = browser.open_test("test_tok_s_is_measured[qemu-tcg]")
    for shown in ("decode_tok_s", "25.2", "board", "accelerator", "Skylake-Client",
                  "power on qemu-tcg (tcg)", "console qemu-tcg"):
        assert shown in page, shown
    console = browser.open_attachment("console qemu-tcg")
    for line in ("[boot] name=bm-ref-guest version=0.1.0", "[perf] summary repeats=2",
                 "[done] status=ok"):
        assert line in console, line
    shot = browser.screenshot(tmp_path / "test-page.png")
    browser.goto(url + "index.html")
    browser.tree()
    browser.open_test("test_tok_s_against_history[qemu-tcg]")
    browser.open_attachment("trend decode_tok_s")  # the image loaded (a decoded PNG)
    browser.screenshot(tmp_path / "trend.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    kept = ROOT / "reports" / "screenshots"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, kept / "allure-test-page.png")
    shutil.copy(tmp_path / "overview.png", kept / "allure-overview.png")

    # categories, and the same report opened as a file
    browser.goto(url + "index.html#categories")
    browser.wait_text("Guest crash", "Guest hang", "Wrong output", "Performance regression",
                      "Lab or infrastructure fault")
    browser.goto((report / "index.html").as_uri())
    assert browser.tree()["test_banner_names_the_build[qemu-tcg]"][0] == "qemu-tcg"


# -- the same report from the real suites, booting the reference guest once ----------------

MODELS = ROOT / "guest" / "models" / "tiny"


@pytest.mark.slow
@pytest.mark.skipif(not (ALLURE.exists() and (MODELS / "model.bin").is_file()
                         and (MODELS / "tokenizer.bin").is_file()),
                    reason="needs the reference guest's model (guest/models/tiny) and npm ci")
def test_report_of_a_real_boot(tmp_path: Path, browser: Chromium,
                               served: tuple[Path, str]) -> None:
    """`pytest suites --target=qemu-tcg -k "banner or tok_s"`: one boot, reported and opened."""
    results = tmp_path / "allure-results"
    argv = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "suites",
            "-p", "no:cacheprovider", "--target=qemu-tcg", "-k",
            "banner or tok_s", f"--alluredir={results}", f"--bm-logs={tmp_path / 'logs'}",
            f"--bm-history={tmp_path / 'history.sqlite'}", "-q"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    by_name = load_results(results)
    banner = by_name["test_banner_names_the_build[qemu-tcg]"]
    assert labels_of(banner)["board"] == "qemu-tcg"
    assert "[boot] name=" in attachment(results, banner, "console qemu-tcg")
    perf = by_name["test_tok_s_against_history[qemu-tcg]"]
    tok_s = next(p["value"] for p in perf["parameters"] if p["name"] == "decode_tok_s")
    assert any(a["name"] == "trend decode_tok_s" for a in perf["attachments"]), \
        "no trend chart: plugin.py's bm_perf must set tracker.attach_trend"
    report, url = served
    render(results, report, tmp_path / "allure-history.jsonl")

    # the overview: every test under its board (all passed, so Allure shows the group closed)
    browser.goto(url + "index.html")
    tree = browser.tree()
    assert set(by_name) <= set(tree), (sorted(by_name), tree)
    assert all(tree[name][0] == "qemu-tcg" for name in by_name), tree
    browser.screenshot(tmp_path / "real-overview.png")

    # the perf test's page: labels, the tok/s figure, the console and the trend chart
    page = browser.open_test("test_tok_s_against_history[qemu-tcg]")
    for shown in ("board", "qemu-tcg", "accelerator", "tcg", "build", "bm-ref-guest",
                  "decode_tok_s", tok_s, "decode_tok_s verdict", "power on qemu-tcg (tcg)"):
        assert shown in page, shown
    assert "decode_tok_s (t..." not in page and "decode_tok_s..." not in page
    console = browser.open_attachment("console qemu-tcg")
    assert "[boot] name=bm-ref-guest" in console and "[perf] summary" in console
    browser.open_attachment("trend decode_tok_s")
    shot = browser.screenshot(tmp_path / "real-test-page.png")
    kept = ROOT / "reports" / "screenshots"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, kept / "allure-real-boot.png")
