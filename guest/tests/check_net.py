"""Network boot on the host build: the HTTP client, streaming, digests and every
fallback of MARKERS.md's [net] lines, against a local server that injects faults.

Usage: check_net.py BM_GUEST DATA_DIR (DATA_DIR from make_fixtures.py).

URL paths choose the server's behaviour: /ok/F (F with its .sha256), /nosha/F (no .sha256),
/badsha/F (a wrong .sha256), /404/F, /stall/F (head, half the body, then silence),
/mute/F (accepts, never answers), /short/F (half the body, then closes), /nolen/F (no
Content-Length: the body ends when the connection closes), /chunked/F.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

failures: list[str] = []
NET_LINE = re.compile(
    r"\[net\] (nic=\d+ nics=\d+ mac=[0-9a-f:]{17} ip=\d+\.\d+\.\d+\.\d+ "
    r"source=(dhcp|static|host) setup_ms=\d+"
    r"|connecting file=\S+ host=\d+\.\d+\.\d+\.\d+ port=\d+"
    r"|http status=\d{3} content_length=(\d+|-) file=\S+"
    r"|progress file=\S+ pct=\d+ bytes=\d+"
    r"|done file=\S+ bytes=\d+ seconds=\d+\.\d{3} mb_s=\d+\.\d{3} sha256=[0-9a-f]{64} "
    r"verified=(1|0|-) expected_from=(config|url|-) hash_ms=\d+\.\d{3}"
    r'|fallback file=\S+ reason=(no_nic|no_dhcp|refused|timeout|http_status|short_body|'
    r'digest_mismatch|no_memory|bad_url) detail="(\\.|[^"\\])*")'
)


def check(cond: bool, what: str) -> None:
    if not cond:
        failures.append(what)
        print("FAIL:", what)


class Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        mode, name = (parts[0], parts[1]) if len(parts) == 2 else ("", "")
        sidecar = name.endswith(".sha256")
        base = name[: -len(".sha256")] if sidecar else name
        path = self.root / base
        if mode == "404" or not path.is_file():
            return self.reply(404, b"not found\n")
        body = path.read_bytes()
        if sidecar:
            if mode == "ok":
                return self.reply(200, f"{hashlib.sha256(body).hexdigest()}  {base}\n".encode())
            if mode == "badsha":
                return self.reply(200, ("0" * 64 + f"  {base}\n").encode())
            return self.reply(404, b"no digest\n")
        if mode == "mute":
            time.sleep(3)
            return
        if mode == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
            return
        if mode == "nolen":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode in ("stall", "short"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if mode == "stall":
                time.sleep(3)
            self.close_connection = True
            return
        self.wfile.write(body)

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(guest: Path, disk: Path, name: str, cfg: str, env: dict[str, str] | None = None
        ) -> tuple[int, list[str], float]:
    path = disk / f"{name}.cfg"
    path.write_text(cfg)
    t0 = time.monotonic()
    proc = subprocess.run([str(guest.resolve()), str(path)], capture_output=True, timeout=60,
                          env=env)
    elapsed = time.monotonic() - t0
    lines = proc.stdout.decode("utf-8", "replace").split("\r\n")[:-1]
    for line in lines:
        if line.startswith("[net]"):
            check(NET_LINE.fullmatch(line) is not None, f"{name}: unexpected form: {line}")
    return proc.returncode, lines, elapsed


def kv(line: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)=("(?:\\.|[^"\\])*"|\S+)', line))


def net(lines: list[str], what: str) -> list[dict[str, str]]:
    return [kv(line) for line in lines if line.startswith(f"[net] {what}")]


def main() -> None:
    guest, data = Path(sys.argv[1]), Path(sys.argv[2])
    work = Path(tempfile.mkdtemp(prefix="bm-net-"))
    srv, disk = work / "srv", work / "disk"
    srv.mkdir()
    disk.mkdir()
    # The served model differs from the one on the disk, so [model] bytes= tells them apart.
    shutil.copy(data / "model_big.bin", srv / "model.bin")
    shutil.copy(data / "model_shared.bin", disk / "model.bin")
    tok = Path(__file__).resolve().parents[1] / "models" / "tiny" / "tokenizer.bin"
    for d in (srv, disk):
        shutil.copy(tok, d / "tokenizer.bin")
    net_size = (srv / "model.bin").stat().st_size
    disk_size = (disk / "model.bin").stat().st_size
    net_sha = hashlib.sha256((srv / "model.bin").read_bytes()).hexdigest()

    Handler.root = srv
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    common = "bench=0\nrepeats=1\nsteps=4\nnet_timeout_ms=500\n"

    def model_bytes(lines: list[str]) -> int:
        found = [kv(x) for x in lines if x.startswith("[model] ")]
        return int(found[0]["bytes"]) if found else -1

    # Success, digest from <url>.sha256.
    code, lines, _ = run(guest, disk, "net_ok", common + f"model_url={base}/ok/model.bin\n")
    check(code == 0, f"net_ok: exit {code}")
    done = net(lines, "done")
    check(len(done) == 1 and done[0]["bytes"] == str(net_size), f"net_ok: done {done}")
    check(done and done[0]["sha256"] == net_sha and done[0]["verified"] == "1"
          and done[0]["expected_from"] == "url", f"net_ok: digest {done}")
    http_lines = net(lines, "http")
    check(http_lines == [{"status": "200", "content_length": str(net_size), "file": "model.bin"}],
          f"net_ok: http {http_lines}")
    pcts = [int(p["pct"]) for p in net(lines, "progress")]
    sizes = [int(p["bytes"]) for p in net(lines, "progress")]
    check(pcts == list(range(10, 101, 10)), f"net_ok: progress {pcts}")
    check(sizes == sorted(sizes) and sizes[-1] == net_size, f"net_ok: progress bytes {sizes}")
    check(all(int(b) * 100 >= p * net_size for p, b in zip(pcts, sizes, strict=False)),
          "net_ok: progress bytes reach their percentage")
    check(model_bytes(lines) == net_size, "net_ok: the model came from the network")
    check(not net(lines, "fallback"), "net_ok: no fallback")
    order = [x.split()[1].split("=")[0] for x in lines if x.startswith("[net]")]
    check(order[:3] == ["nic", "connecting", "http"] and order[-1] == "done",
          f"net_ok: line order {order}")

    # Digest from the configuration; tokenizer too; no .sha256 needed.
    code, lines, _ = run(guest, disk, "net_cfg_sha",
                         common + f"model_url={base}/nosha/model.bin\nmodel_sha256={net_sha}\n"
                         f"tokenizer_url={base}/nosha/tokenizer.bin\n")
    done = net(lines, "done")
    check(code == 0 and len(done) == 2, f"net_cfg_sha: exit {code}, {done}")
    check(done and done[0]["verified"] == "1" and done[0]["expected_from"] == "config",
          f"net_cfg_sha: {done}")
    check(len(done) == 2 and done[1]["verified"] == "-" and done[1]["expected_from"] == "-",
          f"net_cfg_sha: tokenizer unverified {done}")
    check(len(net(lines, "nic")) == 1, "net_cfg_sha: one interface line for two files")

    # Close-delimited body.
    code, lines, _ = run(guest, disk, "net_nolen", common + f"model_url={base}/nolen/model.bin\n")
    done = net(lines, "done")
    check(code == 0 and done and done[0]["bytes"] == str(net_size), f"net_nolen: {done}")
    check(net(lines, "http")[0]["content_length"] == "-", "net_nolen: content_length=-")
    check(not net(lines, "progress"), "net_nolen: no progress without a length")

    # Every fallback: the [net] fallback line, then the disk's model.
    cases = [
        ("net_404", f"{base}/404/model.bin", "http_status", None),
        ("net_refused", f"http://127.0.0.1:{free_port()}/ok/model.bin", "refused", None),
        ("net_stall", f"{base}/stall/model.bin", "timeout", None),
        ("net_mute", f"{base}/mute/model.bin", "timeout", None),
        ("net_short", f"{base}/short/model.bin", "short_body", None),
        ("net_badsha", f"{base}/badsha/model.bin", "digest_mismatch", None),
        ("net_chunked", f"{base}/chunked/model.bin", "http_status", None),
        ("net_bad_url", "http://localhost/model.bin", "bad_url", None),
        ("net_no_nic", f"{base}/ok/model.bin", "no_nic", "none"),
        ("net_no_dhcp", f"{base}/ok/model.bin", "no_dhcp", "nodhcp"),
    ]
    for name, url, reason, mode in cases:
        env = {"BM_NET": mode} if mode else None
        code, lines, elapsed = run(guest, disk, name, common + f"model_url={url}\n", env)
        fb = net(lines, "fallback")
        check(code == 0, f"{name}: exit {code}")
        check(len(fb) == 1 and fb[0]["reason"] == reason and fb[0]["file"] == "model.bin",
              f"{name}: fallback {fb}")
        check(model_bytes(lines) == disk_size, f"{name}: the model came from the disk")
        if reason == "timeout":
            check(elapsed < 2.5, f"{name}: the timeout fired ({elapsed:.1f} s)")
        if reason == "digest_mismatch":
            check(net(lines, "done")[0]["verified"] == "0", f"{name}: done verified=0")

    # Neither the network nor the disk.
    (disk / "model.bin").unlink()
    code, lines, _ = run(guest, disk, "net_neither", common + f"model_url={base}/404/model.bin\n")
    check(code == 1, f"net_neither: exit {code}")
    check(any(x.startswith("[net] fallback file=model.bin reason=http_status") for x in lines),
          "net_neither: fallback line")
    check(any(x.startswith("[error] where=model file=model.bin reason=missing") for x in lines),
          "net_neither: [error] missing")
    check(lines[-1] == "[done] status=error", "net_neither: [done] status=error")

    server.shutdown()
    shutil.rmtree(work)
    if failures:
        print(f"check_net: {len(failures)} failure(s)")
        sys.exit(1)
    print("check_net: all network checks passed")


if __name__ == "__main__":
    main()
