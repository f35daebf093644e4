"""The netserve file server, over real loopback sockets: ranges, refused paths, every fault
as a client sees it on the wire, the request log, and a clean stop."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_baremetal import netserve
from pytest_baremetal.netserve import FileServer
from pytest_baremetal.netserve.ranges import ByteRange, RangeNotSatisfiable, parse_range

ROOT = Path(__file__).resolve().parents[1]
SIZE = 100_000
DATA = bytes((i * 7 + i // 256) & 0xFF for i in range(SIZE))
SECRET = b"s3cr3t-c0ntent-7f1e"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "data.bin").write_bytes(DATA)
    (root / "sub" / "small.txt").write_bytes(b"hello\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "inside").symlink_to(root / "sub" / "small.txt")
    return root


@pytest.fixture
def server(folder: Path) -> Iterator[FileServer]:
    with FileServer(folder) as running:
        yield running
    assert not running.running


Get = Callable[..., tuple[int, dict[str, str], bytes]]


@pytest.fixture
def get(server: FileServer) -> Get:
    """Sends one request with http.client (the path exactly as given); status, headers, body."""

    def request(path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str],
                                                                           bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request(method, path, headers={k.replace("_", "-"): v
                                                for k, v in headers.items()})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    return request


def raw_exchange(port: int, path: str, timeout: float = 10) -> tuple[bytes, bytes]:
    """Headers and every body byte until the server closes (no client-side framing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def header(head: bytes, name: str) -> str:
    for line in head.decode().split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.lower() == name.lower():
            return value.strip()
    raise KeyError(name)


# -- serving ------------------------------------------------------------------------------

def test_whole_file_and_head(get: Get) -> None:
    status, headers, body = get("/data.bin")
    assert status == 200 and body == DATA
    assert headers["Content-Length"] == str(SIZE) and headers["Accept-Ranges"] == "bytes"
    status, headers, body = get("/data.bin", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(SIZE)


@pytest.mark.parametrize(("spec", "start", "end"), [
    ("bytes=10-19", 10, 19),
    ("bytes=99990-", 99990, SIZE - 1),
    ("bytes=-5", SIZE - 5, SIZE - 1),
    ("bytes=0-999999999", 0, SIZE - 1),
    ("bytes=0-0", 0, 0),
])
def test_single_range_is_206(get: Get, spec: str, start: int, end: int) -> None:
    status, headers, body = get("/data.bin", Range=spec)
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert body == DATA[start:end + 1]
    assert headers["Content-Length"] == str(end - start + 1)


@pytest.mark.parametrize("spec", ["bytes=100000-", "bytes=20-10", "bytes=0-1,5-6",
                                  "items=0-5", "bytes=-0", "bytes=-"])
def test_bad_range_is_416(get: Get, spec: str) -> None:
    status, headers, _ = get("/data.bin", Range=spec)
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{SIZE}"


def test_parse_range_units() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == ByteRange(2, 4, 10)
    assert parse_range("bytes=-20", 10) == ByteRange(0, 9, 10)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


def test_keep_alive_serves_several_requests_on_one_connection(server: FileServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for start in (0, 50_000, 99_000):
            conn.request("GET", "/data.bin", headers={"Range": f"bytes={start}-{start + 999}"})
            assert conn.getresponse().read() == DATA[start:start + 1000]
    finally:
        conn.close()
    records = server.log.wait(3)
    assert [r.status for r in records] == [206, 206, 206]


def test_sha256_companion_is_generated(get: Get, folder: Path) -> None:
    status, _, body = get("/data.bin.sha256")
    assert status == 200
    assert body.decode() == f"{hashlib.sha256(DATA).hexdigest()}  data.bin\n"
    (folder / "own.sha256").write_text("not generated\n")
    assert get("/own.sha256")[2] == b"not generated\n"
    assert get("/missing.bin.sha256")[0] == 404


def test_missing_file_and_folder_are_404(get: Get) -> None:
    assert get("/nope.bin")[0] == 404
    assert get("/sub")[0] == 404
    assert get("/sub/small.txt")[2] == b"hello\n"
    assert get("/inside")[2] == b"hello\n"  # a symlink that stays inside is fine


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2fsecret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt", "//etc/passwd", "/%2fetc%2fpasswd", "/..%5csecret.txt",
    "/escape", "/C:/Windows/win.ini", "/%00data.bin", "secret.txt",
])
def test_paths_outside_the_root_are_refused(get: Get, path: str) -> None:
    status, _, body = get(path)
    assert status in (403, 404), (path, status)
    assert SECRET not in body


def test_refusals_are_403_and_logged(get: Get, server: FileServer) -> None:
    assert get("/%2e%2e/secret.txt")[0] == 403
    assert get("/escape")[0] == 403
    records = server.log.wait(2)
    assert [r.outcome for r in records] == ["refused", "refused"]


# -- faults, as the client sees them -------------------------------------------------------

@pytest.mark.parametrize("code", [404, 500])
def test_status_fault_hits_its_path_only(get: Get, server: FileServer, code: int) -> None:
    server.set_faults(netserve.status(code, "data.bin"))
    assert get("/data.bin")[0] == code
    assert get("/data.bin.sha256")[0] == 200
    assert get("/sub/small.txt")[0] == 200
    server.clear_faults()
    assert get("/data.bin")[0] == 200


def test_fault_on_the_companion_wins(get: Get, server: FileServer) -> None:
    server.set_faults(netserve.status(404, "data.bin.sha256"))
    assert get("/data.bin.sha256")[0] == 404
    assert get("/data.bin")[0] == 200


def test_close_at_fraction_cuts_the_body(server: FileServer) -> None:
    server.set_faults(netserve.close_at(0.25))
    head, body = raw_exchange(server.port, "/data.bin")
    assert header(head, "Content-Length") == str(SIZE)
    assert body == DATA[:SIZE // 4]
    record = server.log.wait(1)[0]
    assert record.sent == SIZE // 4 and record.outcome == "cut by fault"
    assert record.faults == ("close_at(0.25)",)


def test_close_at_applies_to_a_range_response(server: FileServer) -> None:
    server.set_faults(netserve.close_at(0.5))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/data.bin", headers={"Range": "bytes=1000-1999"})
    with pytest.raises(http.client.IncompleteRead) as caught:
        conn.getresponse().read()
    conn.close()
    assert caught.value.partial == DATA[1000:1500]


def test_times_limits_a_fault_to_the_first_requests(get: Get, server: FileServer) -> None:
    server.set_faults(netserve.status(500, times=1))
    assert get("/data.bin")[0] == 500
    assert get("/data.bin")[0] == 200


def test_stall_holds_the_body_at_its_fraction(server: FileServer) -> None:
    server.set_faults(netserve.stall(1.0, at_fraction=0.5))
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /data.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(0.5)
        data = b""
        with pytest.raises(socket.timeout):
            while chunk := sock.recv(65536):
                data += chunk
        before_stall = data.partition(b"\r\n\r\n")[2]
        assert before_stall == DATA[:SIZE // 2]
        sock.settimeout(10)
        while len(data.partition(b"\r\n\r\n")[2]) < SIZE:
            data += sock.recv(65536)
    assert data.partition(b"\r\n\r\n")[2] == DATA
    assert time.monotonic() - start >= 1.0


def test_stall_at_zero_sends_headers_only(server: FileServer) -> None:
    server.set_faults(netserve.stall(0.8))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/data.bin")
    response = conn.getresponse()  # the headers arrive at once
    start = time.monotonic()
    assert response.read() == DATA
    assert time.monotonic() - start >= 0.7
    conn.close()


def test_lie_length_longer_than_the_body(server: FileServer) -> None:
    server.set_faults(netserve.lie_length(+100))
    head, body = raw_exchange(server.port, "/data.bin")
    assert header(head, "Content-Length") == str(SIZE + 100)
    assert body == DATA  # then the server closes: 100 bytes never come


def test_lie_length_shorter_than_the_body(server: FileServer) -> None:
    server.set_faults(netserve.lie_length(-10, "data.bin"))
    head, body = raw_exchange(server.port, "/data.bin")
    assert header(head, "Content-Length") == str(SIZE - 10)
    assert header(head, "Connection") == "close"
    assert body == DATA  # more bytes on the wire than announced


def test_flip_byte_inverts_one_byte(get: Get, server: FileServer) -> None:
    server.set_faults(netserve.flip_byte(12_345))
    body = get("/data.bin")[2]
    diff = [i for i in range(SIZE) if body[i] != DATA[i]]
    assert diff == [12_345] and body[12_345] == DATA[12_345] ^ 0xFF
    assert get("/data.bin", Range="bytes=0-999")[2] == DATA[:1000]  # not covered
    covered = get("/data.bin", Range="bytes=12000-12999")[2]
    assert covered[345] == DATA[12_345] ^ 0xFF and covered[:345] == DATA[12000:12345]
    # the companion still names the true digest: the client sees a mismatch
    assert hashlib.sha256(body).hexdigest() not in get("/data.bin.sha256")[2].decode()


def test_rate_limit_is_measurable(get: Get, server: FileServer) -> None:
    start = time.monotonic()
    get("/data.bin")
    unlimited = time.monotonic() - start
    server.set_faults(netserve.rate_limit(200_000))
    start = time.monotonic()
    assert get("/data.bin")[2] == DATA
    limited = time.monotonic() - start
    rate = SIZE / limited
    assert 140_000 < rate <= 210_000, f"{rate:.0f} B/s for a 200000 B/s limit"
    assert unlimited < limited / 4


def test_faults_combine(get: Get, server: FileServer) -> None:
    server.set_faults(netserve.flip_byte(5), netserve.rate_limit(1_000_000, "data.bin"))
    body = get("/data.bin")[2]
    assert body[5] == DATA[5] ^ 0xFF
    record = server.log.wait(1)[0]
    assert record.faults == ("flip_byte(5)", "rate_limit(1e+06B/s)")


def test_bad_fault_values_are_refused() -> None:
    with pytest.raises(ValueError, match="404"):
        netserve.status(418)
    with pytest.raises(ValueError, match="fraction"):
        netserve.close_at(1.5)
    with pytest.raises(ValueError, match="bytes_per_s"):
        netserve.rate_limit(0)


# -- the log -------------------------------------------------------------------------------

def test_log_records_every_request(get: Get, server: FileServer, tmp_path: Path) -> None:
    get("/data.bin", Range="bytes=0-99")
    server.set_faults(netserve.status(404, "sub/small.txt"))
    get("/sub/small.txt", method="HEAD")
    records = server.log.wait(2)
    first, second = records
    assert (first.method, first.path, first.range, first.status, first.length, first.sent) == (
        "GET", "/data.bin", "bytes=0-99", 206, 100, 100)
    assert first.client == "127.0.0.1" and first.duration_s >= 0 and first.faults == ()
    assert (second.method, second.status, second.faults, second.sent) == (
        "HEAD", 404, ("status(404)",), 0)
    text = server.log.write(tmp_path / "requests.log").read_text()
    assert "GET /data.bin range=bytes=0-99 status=206 length=100 sent=100" in text
    assert "HEAD /sub/small.txt" in text and "faults=status(404)" in text
    assert [r.path for r in server.log.for_path("data.bin")] == ["/data.bin"]


def test_a_client_that_leaves_is_logged(server: FileServer) -> None:
    server.set_faults(netserve.rate_limit(50_000))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        sock.sendall(b"GET /data.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.partition(b"\r\n\r\n")[2]:  # some of the body came
            data += sock.recv(1000)
    record = server.log.wait(1)[0]
    assert record.outcome.startswith("client gone") and 0 < record.sent < SIZE


# -- addresses, ports, stopping ----------------------------------------------------------------

def test_urls_and_loopback_only(folder: Path) -> None:
    with FileServer(folder, guest_host="192.168.7.1") as lab:
        assert lab.guest_url("a b.bin") == f"http://192.168.7.1:{lab.port}/a%20b.bin"
        assert lab.url("data.bin") == f"http://127.0.0.1:{lab.port}/data.bin"
    with FileServer(folder) as qemu:
        assert qemu.guest_url("model.bin") == f"http://10.0.2.2:{qemu.port}/model.bin"
    with pytest.raises(ValueError, match="loopback"):
        FileServer(folder, bind="0.0.0.0")
    with pytest.raises(ValueError, match="not a folder"):
        FileServer(folder / "data.bin")


def test_ports_are_not_reused_within_a_process(folder: Path) -> None:
    ports = set()
    for _ in range(5):
        with FileServer(folder) as one:
            ports.add(one.port)
    assert len(ports) == 5


def netserve_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("netserve")
            or "process_request" in t.name]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stop_leaves_no_thread_and_closes_the_port(folder: Path) -> None:
    before = set(threading.enumerate())
    server = FileServer(folder).start()
    port = server.port
    assert port_open(port)
    idle = socket.create_connection(("127.0.0.1", port))  # a keep-alive client never leaving
    idle.sendall(b"GET /sub/small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    idle.recv(1000)
    server.set_faults(netserve.stall(60))
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"GET /data.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    server.log.wait(1)
    time.sleep(0.2)  # the stalled response is waiting now
    assert [r.outcome for r in server.log.records] == ["ok", "in progress"]
    last = server.log.text().splitlines()[-1]
    assert "GET /data.bin" in last and "status=200" in last and "faults=stall(60s@0)" in last
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3, "stop() waited for a client"
    try:
        assert set(threading.enumerate()) - before == set()
        assert not port_open(port)
        assert server.log.wait(2)[-1].outcome == "server stopped"
        server.stop()  # idempotent
    finally:
        idle.close()
        stalled.close()


def test_stop_on_an_exception_in_the_with_block(folder: Path) -> None:
    with pytest.raises(RuntimeError), FileServer(folder) as server:
        port = server.port
        raise RuntimeError("test failed")
    assert not port_open(port) and not netserve_threads()


# -- the fixture -------------------------------------------------------------------------------

def test_fixture_serves_the_build_files_and_reports_its_log(pytester: pytest.Pytester) -> None:
    model = ROOT / "guest" / "models" / "tiny" / "model.bin"
    efi = pytester.path / "app.efi"
    efi.write_bytes(b"MZ")
    pytester.makepyfile(test_net="""
        import hashlib, urllib.request, threading
        from pathlib import Path

        def test_ok(bm_model_server):
            body = urllib.request.urlopen(bm_model_server.url("model.bin")).read()
            assert body == Path(MODEL_PATH).read_bytes()
            assert bm_model_server.guest_url("model.bin").startswith("http://10.0.2.2:")
            print("PORT", bm_model_server.port)

        def test_fails(bm_model_server):
            urllib.request.urlopen(bm_model_server.url("tokenizer.bin.sha256")).read()
            assert False, "on purpose"

        def test_gone():
            assert not [t for t in threading.enumerate() if t.name.startswith("netserve")]
    """.replace("MODEL_PATH", repr(str(model))))
    result = pytester.runpytest_subprocess(
        f"--bm-efi={efi}", f"--bm-file=model.bin={model}",
        f"--bm-file=tokenizer.bin={model.parent / 'tokenizer.bin'}",
        f"--bm-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*netserve requests*",
                                 "*GET /tokenizer.bin.sha256 range=- status=200*"])
    logs = list((pytester.path / "logs").glob("*/netserve/*test_fails.requests.log"))
    assert logs and "tokenizer.bin.sha256" in logs[0].read_text()
    port = int(next(line.split()[-1] for line in result.stdout.lines if "PORT" in line))
    assert not port_open(port)


def test_fixture_skips_a_board_without_network(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(board, bm_model_server): pass")
    result = pytester.runpytest_subprocess(
        "--target=qemu-q35", f"--bm-boards={ROOT / 'boards'}", "-rs",
        f"--bm-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*board qemu-q35 has no network*"])


def test_fixture_serves_the_named_files_only(pytester: pytest.Pytester) -> None:
    """--bm-file model.bin=~/model.bin must not serve the rest of ~ (~/.ssh/id_rsa)."""
    home = pytester.mkdir("home")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_bytes(SECRET)
    (home / "model.bin").write_bytes(b"weights")
    (home / "notes.txt").write_bytes(SECRET)
    efi = pytester.path / "app.efi"
    efi.write_bytes(b"MZ")
    pytester.makepyfile(test_net="""
        import urllib.error, urllib.request
        import pytest

        def fetch(server, name):
            try:
                return urllib.request.urlopen(server.url(name)).status
            except urllib.error.HTTPError as error:
                return error.code

        def test_only_named(bm_model_server):
            assert urllib.request.urlopen(bm_model_server.url("model.bin")).read() == b"weights"
            assert fetch(bm_model_server, "model.bin.sha256") == 200
            for name in (".ssh/id_rsa", "notes.txt", "notes.txt.sha256", ".ssh/",
                         "app.efi", ""):
                assert fetch(bm_model_server, name) in (403, 404), name
    """)
    result = pytester.runpytest_subprocess(
        f"--bm-efi={efi}", f"--bm-file=model.bin={home / 'model.bin'}",
        f"--bm-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    logs = list((pytester.path / "logs").glob("*/netserve/*.requests.log"))
    assert logs and "GET /.ssh/id_rsa range=- status=403" in logs[0].read_text()


def test_server_with_a_list_serves_nothing_else(folder: Path) -> None:
    with FileServer(folder, only=["sub/small.txt"]) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for path, status in [("/sub/small.txt", 200), ("/sub/small.txt.sha256", 200),
                                 ("/data.bin", 403), ("/inside", 403), ("/sub/", 403)]:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                assert response.status == status, (path, body)
                assert DATA[:100] not in body
        finally:
            conn.close()


def test_served_folder_stages_renamed_files(tmp_path: Path) -> None:
    from pytest_baremetal.netserve.pytest_glue import served_folder

    a = tmp_path / "a"
    a.mkdir()
    (a / "model.bin").write_bytes(b"m")
    (a / "tok.bin").write_bytes(b"t")
    assert served_folder({"model.bin": a / "model.bin"}, tmp_path / "s1") == a
    staged = served_folder({"model.bin": a / "model.bin", "tokenizer.bin": a / "tok.bin"},
                           tmp_path / "s2")
    assert staged == tmp_path / "s2" and (staged / "tokenizer.bin").read_bytes() == b"t"
    assert os.path.samefile(staged / "model.bin", a / "model.bin")


def test_fixture_log_is_an_allure_attachment(pytester: pytest.Pytester) -> None:
    pytest.importorskip("allure")
    model = ROOT / "guest" / "models" / "tiny" / "model.bin"
    efi = pytester.path / "app.efi"
    efi.write_bytes(b"MZ")
    pytester.makepyfile(test_net="""
        import urllib.request

        def test_ok(bm_model_server):
            urllib.request.urlopen(bm_model_server.url("model.bin.sha256")).read()
    """)
    results = pytester.path / "allure-results"
    result = pytester.runpytest_subprocess(
        f"--bm-efi={efi}", f"--bm-file=model.bin={model}", f"--alluredir={results}",
        f"--bm-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    attached = [p.read_text() for p in results.glob("*-attachment.*")]
    assert any("GET /model.bin.sha256 range=- status=200" in text for text in attached), attached
