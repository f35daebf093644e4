"""Run contexts: perf events to samples, comparison keys, host facts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_baremetal.history.context import (
    RunContext,
    Sample,
    collect_context,
    git_commit,
    samples_from_perf,
)


def test_samples_from_perf_events_skip_the_summary() -> None:
    events: list[dict[str, object]] = [
        {"repeat": 1, "prefill_tok_s": 405.123, "decode_tok_s": 25.153, "decode_ms": 2345.6},
        {"repeat": 2, "prefill_tok_s": 400.0, "decode_tok_s": 25.0},
        {"repeats": 2, "decode_tok_s_median": 25.07},  # [perf] summary
    ]
    assert samples_from_perf(events) == [
        Sample("prefill_tok_s", 405.123, 1),
        Sample("decode_tok_s", 25.153, 1),
        Sample("prefill_tok_s", 400.0, 2),
        Sample("decode_tok_s", 25.0, 2),
    ]
    assert samples_from_perf([{"repeat": "3", "decode_tok_s": "2.5"}], ["decode_tok_s"]) == [
        Sample("decode_tok_s", 2.5, 3)
    ]


def test_keys_differ_on_accelerator_cpu_and_fallback() -> None:
    base = RunContext(board="b", accelerator="tcg", cpu_model="max", model_digest="d")
    same = RunContext(board="b", accelerator="tcg", cpu_model="max", model_digest="d",
                      build_id="other", host="elsewhere")  # fmt: skip
    fallback = RunContext(board="b", accelerator="tcg", cpu_model="qemu64", model_digest="d",
                          fallback_reason="kvm: failed to set MSR 0x10a")  # fmt: skip
    assert base.key == same.key
    assert base.key.differences(fallback.key) == [
        "cpu_model max vs qemu64",
        "no fallback vs a fallback",
    ]


def test_collect_context_fills_host_facts(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@e",
         "commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
    )  # fmt: skip
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    c = collect_context(board="b", accelerator="tcg", cpu_model="m", model_digest="d",
                        cwd=tmp_path)  # fmt: skip
    assert c.git_commit == head and len(head) == 40
    assert c.host
    assert c.started_at.tzinfo is not None
    assert git_commit(tmp_path_factory.mktemp("not-a-repo")) == ""
