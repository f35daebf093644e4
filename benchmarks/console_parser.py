"""Console parser: throughput (MB/s) and memory per MB of input, for a console that prints
far more than a test reads (a chatty build, a progress meter, a stuck loop printing).

Feeds ``MB`` megabytes of a realistic mix through a real Console (reader thread, raw log,
cleaner, line window, event parser, death strings) from memory, three times, and prints
the median throughput and the growth of the process's resident memory per MB of input.
Lines and events beyond their windows are not kept (the raw log on disk has everything).
Usage: ``python benchmarks/console_parser.py [MB]`` (default 38, the size in issue #12).
"""

from __future__ import annotations

import gc
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hostinfo import host_cpu  # benchmarks/hostinfo.py

from pytest_baremetal.console import BytesTransport, Console
from pytest_baremetal.markers import reference_profile

CHUNK = 4096  # what a serial socket hands over at a time


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sample(megabytes: float) -> bytes:
    """Marker lines, CR progress lines, generated text, in the proportions of a long run."""
    block = b"".join([
        b"[perf] repeat=%d prefill_tokens=5 prefill_ms=12.5 prefill_tok_s=400.0 "
        b"decode_tokens=64 decode_ms=512.0 decode_tok_s=125.0 first_token_ms=14.2\r\r\n" % i
        + b"[net] progress file=model.bin pct=%d bytes=%d\r" % (i % 100, i * 4096)
        + b"Once upon a time there was a little girl who liked to play outside.\r\r\n"
        + b"\x1b[0m\x1b[=3hplain firmware line %d\r\n" % i
        for i in range(200)])
    count = max(1, int(megabytes * 1e6 / len(block)))
    return block * count


def run(data: bytes) -> tuple[float, float, float, int, int]:
    """(wall seconds, CPU seconds, RSS growth in MB, events parsed, events kept) for one
    pass."""
    gc.collect()
    before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        source = BytesTransport(data, CHUNK, "end of input")
        console = Console(source, tmp, reference_profile(), "bench")
        start, cpu = time.perf_counter(), time.process_time()
        with console:
            while console.eof is None:
                console.wait_for_output(1.0)
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu
            grown = rss_mb() - before
            parsed, kept = console.event_count, len(console.events)
    return seconds, cpu_seconds, grown, parsed, kept


def main() -> int:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 38.0
    data = sample(megabytes)
    size_mb = len(data) / 1e6
    print(f"host CPU: {host_cpu()}")
    print(f"python: {platform.python_implementation()} {platform.python_version()}")
    print(f"input: {size_mb:.1f} MB of console output, {CHUNK}-byte reads")
    results = [run(data) for _ in range(3)]
    speeds = [size_mb / r[0] for r in results]
    cpu_speeds = [size_mb / r[1] for r in results]
    grown, parsed, kept = results[0][2], results[0][3], results[0][4]
    print(f"throughput: median {statistics.median(speeds):.2f} MB/s wall "
          f"(runs: {', '.join(f'{v:.2f}' for v in speeds)}), "
          f"{statistics.median(cpu_speeds):.2f} MB per CPU-second")
    print(f"memory: first run grew the process by {grown:.0f} MB = "
          f"{grown / size_mb:.2f} MB per MB of input ({parsed} events parsed, {kept} kept; "
          "lines and events beyond their windows are on disk only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
