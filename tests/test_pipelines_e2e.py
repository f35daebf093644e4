"""The docs/ pipeline examples run end to end: a small runner simulator executes the jobs'
scripts in order (GitLab: a fresh checkout per job, the cache and earlier jobs' artifacts
restored; GitHub Actions: the steps of one job, with actions/cache, checkout and
upload-artifact done by copying), twice, like two nights. Boards: the simulated Skylake box
(GitLab) and qemu-tcg-icount (GitHub), with a short generation."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
NODE_MODULES = ROOT / "node_modules" if (ROOT / "node_modules").is_dir() else None

pytestmark = pytest.mark.slow


def checkout(workspace: Path) -> None:
    """A fresh clone, as a runner makes one: the tracked files this pipeline needs."""
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    for name in ("suites", "boards", "guest"):
        (workspace / name).symlink_to(ROOT / name)  # the guest build is shared, not cloned
    shutil.copytree(ROOT / "scripts", workspace / "scripts")
    for name in ("pyproject.toml", "conftest.py", "package.json"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, workspace / name)
    (workspace / ".venv").symlink_to(VENV)  # BM_PREINSTALLED: the runner image has these
    assert NODE_MODULES is not None
    (workspace / "node_modules").symlink_to(NODE_MODULES)


def copy_paths(src: Path, dst: Path, paths: list[str]) -> None:
    for rel in paths:
        source = src / rel.rstrip("/")
        target = dst / rel.rstrip("/")
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def shell(line: str, workspace: Path, env: dict[str, str], log: list[str]) -> int:
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", line], cwd=workspace, env=env,
                            capture_output=True, text=True, timeout=900)
    log.append(f"$ {line}\n{result.stdout}{result.stderr}")
    return result.returncode


def base_env(extra: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BM_"))}
    env.update({"BM_PREINSTALLED": "1", "PYTHONPATH": str(ROOT), "CI": "true"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), text)


def run_gitlab(spec: dict[str, Any], base: Path, night: int, log: list[str],
               board: str) -> dict[str, int]:
    """One pipeline: jobs by stage; each in a fresh checkout with cache and artifacts."""
    env = base_env({**spec["variables"], "BM_TARGET": board, "CI_COMMIT_REF_SLUG": "main",
                    "CI_PIPELINE_ID": str(night)})
    default = spec.get("default", {})
    results: dict[str, int] = {}
    artifacts = base / f"artifacts-{night}"
    jobs = [(n, j) for n, j in spec.items() if isinstance(j, dict) and "script" in j]
    failed = False
    for stage in spec["stages"]:
        for name, job in [(n, j) for n, j in jobs if j.get("stage", "test") == stage]:
            if failed and job.get("when") != "always":
                continue
            workspace = base / "build"
            checkout(workspace)
            cache = job.get("cache", default.get("cache"))
            cache_dir = base / "cache" / expand(cache["key"], env) if cache else None
            if cache_dir is not None:
                copy_paths(cache_dir, workspace, cache["paths"])
            copy_paths(artifacts, workspace, ["reports"])  # earlier stages' artifacts
            rc = 0
            for line in [*job.get("before_script", default.get("before_script", [])),
                         *job["script"]]:
                rc = shell(line, workspace, env, log)
                if rc:
                    break
            results[name] = rc
            failed |= rc != 0
            if cache_dir is not None and (rc == 0 or cache.get("when") == "always"):
                copy_paths(workspace, cache_dir, cache["paths"])
            kept = job.get("artifacts", {})
            if rc == 0 or kept.get("when") == "always":
                copy_paths(workspace, artifacts, kept.get("paths", []))
    return results


def run_github(spec: dict[str, Any], base: Path, night: int, log: list[str],
               board: str) -> dict[str, int]:
    """One workflow run: the steps of each job in one workspace."""
    results: dict[str, int] = {}
    for job_name, job in spec["jobs"].items():
        env = base_env({**spec.get("env", {}), **job.get("env", {}), "BM_TARGET": board})
        workspace = base / "work"
        failed = False
        for n, step in enumerate(job["steps"]):
            condition = str(step.get("if", "success()"))
            if failed and "always()" not in condition:
                continue
            uses = str(step.get("uses", ""))
            args = {k: str(v).replace("${{ github.run_id }}", str(night))
                    for k, v in step.get("with", {}).items()}
            paths = [p for p in args.get("path", "").splitlines() if p]
            rc = 0
            if uses.startswith("actions/checkout"):
                checkout(workspace)
            elif uses.startswith("actions/cache/restore"):
                store = base / "cache"
                keys = sorted(store.iterdir(), key=lambda p: p.stat().st_mtime) \
                    if store.is_dir() else []
                hit = [k for k in keys if k.name == args["key"]] or \
                    [k for k in keys if k.name.startswith(args.get("restore-keys", "\0"))]
                if hit:
                    copy_paths(hit[-1], workspace, paths)
            elif uses.startswith("actions/cache/save"):
                target = base / "cache" / args["key"]
                assert not target.exists(), "a GitHub cache key cannot be saved twice"
                target.mkdir(parents=True)
                copy_paths(workspace, target, paths)
            elif uses.startswith("actions/upload-artifact"):
                copy_paths(workspace, base / f"artifacts-{night}", paths)
            elif uses:
                raise AssertionError(f"the simulator does not know {uses}")
            else:
                rc = shell(str(step["run"]), workspace, env, log)
            results[f"{job_name}/{step.get('name', n)}"] = rc
            failed |= rc != 0
    return results


def history_runs(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])


def verdict_of(metrics: Path) -> str:
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    return next(str(r["text"]) for r in rows if r["source"] == "verdict")


# The lab runner's variable names the board: the GitLab pipeline runs on the simulated
# Skylake box (relay, pty console, PXE), the GitHub one on the deterministic icount board.
@pytest.mark.parametrize(("kind", "board"), [("gitlab", "sim-skylake"),
                                             ("github", "qemu-tcg-icount")])
def test_nightly_pipeline_runs_twice_and_carries_its_history(kind: str, board: str,
                                                            tmp_path: Path) -> None:
    if shutil.which("qemu-system-x86_64") is None or NODE_MODULES is None:
        pytest.skip("needs qemu-system-x86_64 and node_modules (bash scripts/setup.sh)")
    spec = yaml.safe_load((ROOT / "docs" / f"nightly-{kind}.yml").read_text())
    run = run_gitlab if kind == "gitlab" else run_github
    for night in (1, 2):
        log: list[str] = []
        results = run(spec, tmp_path, night, log, board)
        assert results and not any(results.values()), "\n".join(log)[-6000:]
        text = "\n".join(log)
        assert "passed" in text and "no change points in the history of board " \
            f"{board}" in text, text[-4000:]
        out = tmp_path / f"artifacts-{night}" / "reports"
        assert (out / "junit.xml").is_file() and (out / "metrics.prom").is_file()
        assert (out / "allure-report" / "index.html").is_file(), text[-3000:]
        logs = re.findall(r'name="bm_log" value="([^"]+)"', (out / "junit.xml").read_text())
        assert logs and all(not log.startswith("/") for log in logs), logs
        assert all((out / log).is_file() for log in logs), logs  # inside the artifacts
        assert re.search(rf"^bm_decode_tok_s\{{board=\"{board}\"",
                         (out / "metrics.prom").read_text(), re.M)
    # the second night saw the first one: the store and the Allure history were carried
    cached = sorted((tmp_path / "cache").rglob("history.sqlite"),
                    key=lambda p: p.stat().st_mtime)[-1]
    assert history_runs(cached) == 2
    allure_history = cached.parent / "allure-history.jsonl"
    assert len(allure_history.read_text().splitlines()) == 2
    second = verdict_of(tmp_path / "artifacts-2" / "reports" / "metrics.jsonl")
    assert "the baseline has 1 boot(s)" in second, second
    first = verdict_of(tmp_path / "artifacts-1" / "reports" / "metrics.jsonl")
    assert "no earlier passing run" in first, first
