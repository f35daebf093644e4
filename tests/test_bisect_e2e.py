"""``pytest-baremetal bisect`` end to end: a throwaway git repository holding the reference
guest, whose history slows the guest down in one commit (``slowdown_pct`` default in
``config.c``); the bisection on qemu-tcg-icount names that commit with its figures."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def slow_history(tmp_path: Path) -> tuple[Path, list[str]]:
    """Five commits; the third sets the default slowdown_pct to 20%."""
    repo = tmp_path / "product"
    guest = repo / "guest"
    shutil.copytree(ROOT / "guest" / "src", guest / "src")
    for name in ("Makefile", "uefi.mk"):
        shutil.copy2(ROOT / "guest" / name, guest / name)
    (guest / "models" / "tiny").mkdir(parents=True)
    for name in ("model.bin", "tokenizer.bin"):
        shutil.copy2(ROOT / "guest" / "models" / "tiny" / name, guest / "models" / "tiny" / name)
    (repo / ".gitignore").write_text("guest/build/\n")
    git(repo.parent, "init", "-q", str(repo))
    config = guest / "src" / "config.c"
    shas = [commit(repo, "guest as released")]
    edit(config, "cfg->seed = 42;", "cfg->seed = 42; /* the seed of the stories */")
    shas.append(commit(repo, "comment the seed"))
    edit(config, "cfg->slowdown_pct = 0.0f;", "cfg->slowdown_pct = 20.0f;")
    shas.append(commit(repo, "tune the generation loop"))
    edit(config, "cfg->topp = 0.9f;", "cfg->topp = 0.9f; /* nucleus */")
    shas.append(commit(repo, "comment top-p"))
    edit(config, "cfg->bench_runs = 5;", "cfg->bench_runs = 5; /* per benchmark */")
    shas.append(commit(repo, "comment bench runs"))
    return repo, shas


def test_bisect_names_the_injected_commit(slow_history: tuple[Path, list[str]]) -> None:
    if shutil.which("qemu-system-x86_64") is None or shutil.which("make") is None:
        pytest.skip("needs qemu-system-x86_64 and make (bash scripts/setup.sh)")
    repo, shas = slow_history
    result = subprocess.run(
        [sys.executable, "-m", "pytest_baremetal", "bisect", "--good", shas[0], "--bad",
         shas[-1], "--build", "make -C guest", "--target", "qemu-tcg-icount",
         "--bm-boards", str(ROOT / "boards")],
        cwd=repo, capture_output=True, text=True, timeout=900)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert f"first slow commit: {shas[2]} tune the generation loop" in out, out[-4000:]
    figures = re.search(r"decode_tok_s ([\d.]+) vs ([\d.]+) at its parent (\w+) \(([-+\d.]+)%\)",
                        out)
    assert figures, out[-4000:]
    assert figures.group(3) == shas[1][:10]
    # 20% more time per token: tok/s / 1.2, i.e. -16.7%, exactly on the icount board
    assert float(figures.group(4)) == pytest.approx(-16.7, abs=1.0)
    assert git(repo, "rev-parse", "HEAD") == shas[-1]  # left where it started
    assert "bisect" not in git(repo, "status")
    steps = re.findall(r"bisect: (\w{10}) decode_tok_s=", out)
    assert 1 <= len(steps) <= 3, out[-4000:]  # git bisect run tested only the middle
