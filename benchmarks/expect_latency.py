"""Latency from a line written into the console socket to a waiting expect() returning.

A writer thread writes each line a few milliseconds after the main thread has started
waiting, so every sample measures the wake-up path (socket -> reader thread -> log ->
cleaner -> Condition -> expect). Usage: ``python benchmarks/expect_latency.py [lines]``.
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from pytest_baremetal.console import Console, SocketTransport
from pytest_baremetal.markers import reference_profile


def measure(count: int) -> list[float]:
    host_end, guest_end = socket.socketpair()
    go = threading.Event()
    written: list[float] = []
    samples: list[float] = []
    lock = threading.Lock()

    def writer() -> None:
        for i in range(count):
            go.wait()
            go.clear()
            time.sleep(0.002)
            with lock:
                written.append(time.perf_counter())
            guest_end.sendall(f"[bench] name=line{i} param={i} ok=1\r\r\n".encode())

    with tempfile.TemporaryDirectory() as tmp:
        console = Console(SocketTransport(host_end), Path(tmp), reference_profile(), "bench")
        thread = threading.Thread(target=writer, daemon=True)
        with console:
            thread.start()
            for i in range(count):
                go.set()
                console.expect(rf"^\[bench\] name=line{i} ", timeout=5)
                returned = time.perf_counter()
                with lock:
                    samples.append(returned - written[i])
            thread.join()
    guest_end.close()
    return samples


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    samples_ms = sorted(s * 1000 for s in measure(count))
    p95 = samples_ms[int(0.95 * (len(samples_ms) - 1))]
    print(
        f"expect latency over {count} lines: median {statistics.median(samples_ms):.3f} ms, "
        f"p95 {p95:.3f} ms, max {samples_ms[-1]:.3f} ms (target: median < 20 ms)"
    )


if __name__ == "__main__":
    main()
