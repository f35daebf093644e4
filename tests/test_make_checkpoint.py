"""guest/tools/make_checkpoint.py: random-weight checkpoints with a matching tokenizer."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pytest_baremetal.llama import bpe, checkpoint, tokenizer_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "guest" / "tools" / "make_checkpoint.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_checkpoint", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--dim", "32", "--hidden-dim", "80", "--layers", "2", "--heads", "4",
        "--kv-heads", "2", "--vocab", "300", "--seq-len", "64"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, check=False, cwd=ROOT)


def test_tiny_shape_cli(tmp_path: Path) -> None:
    result = run("--out", str(tmp_path), *TINY)
    assert result.returncode == 0, result.stderr
    model = tmp_path / "model.bin"
    header = struct.unpack("<7i", model.read_bytes()[:28])
    assert header == (32, 80, 2, 4, 2, 300, 64)
    config = checkpoint.read_config(model)
    assert model.stat().st_size == config.file_size()
    loaded = checkpoint.load(model)
    assert loaded.config.kv_dim == 16
    assert loaded.weights["wk"].shape == (2, 16, 32)
    assert np.all(loaded.weights["rms_att"] == 1.0)
    assert float(np.std(loaded.weights["wq"])) == pytest.approx(0.02, rel=0.1)
    vocab = tokenizer_file.load(tmp_path / "tokenizer.bin", config.vocab_size)
    assert len(vocab) == 300
    assert len(set(vocab.pieces)) == 300
    assert vocab.pieces[1] == b"<s>" and vocab.pieces[3 + 0x41] == b"<0x41>"
    assert b" " in vocab.pieces
    assert str(config.param_count()) in result.stdout


def test_separate_classifier(tmp_path: Path) -> None:
    assert run("--out", str(tmp_path), *TINY, "--separate-classifier").returncode == 0
    model = tmp_path / "model.bin"
    assert struct.unpack("<7i", model.read_bytes()[:28])[5] == -300
    loaded = checkpoint.load(model)
    assert not loaded.config.shared_classifier
    assert loaded.classifier.shape == (300, 32)


def test_presets_match_llama2c_shapes() -> None:
    tool = load_tool()
    assert tool.PRESETS["15M"] == {"dim": 288, "hidden_dim": 768, "layers": 6, "heads": 6,
                                   "kv_heads": 6, "vocab": 32000, "seq_len": 256}
    assert tool.PRESETS["110M"]["dim"] == 768 and tool.PRESETS["110M"]["seq_len"] == 1024
    config = checkpoint.Config(288, 768, 6, 6, 6, 32000, 256)
    assert 15_000_000 < config.param_count() < 15_300_000


def test_synthetic_tokenizer_encodes_and_round_trips() -> None:
    tool = load_tool()
    pieces = tool.synthetic_pieces(1000)
    assert len(pieces) == len(set(pieces)) == 1000
    vocab = tokenizer_file.Vocabulary(tuple(pieces), tuple(-float(i) for i in range(1000)),
                                      max(len(p) for p in pieces))
    text = "hello world, café"
    assert bpe.decode(vocab, bpe.encode(vocab, text)) == text.encode()


def test_minimum_vocab() -> None:
    tool = load_tool()
    assert b" " in tool.synthetic_pieces(260)
    with pytest.raises(ValueError):
        tool.synthetic_pieces(259)


def test_bad_shape_is_an_error(tmp_path: Path) -> None:
    bad = [*TINY]
    bad[bad.index("--heads") + 1] = "3"  # 32 is not a multiple of 3
    result = run("--out", str(tmp_path), *bad)
    assert result.returncode == 2
    assert "n_heads" in result.stderr
    assert not (tmp_path / "model.bin").exists()
    assert run("--out", str(tmp_path), "--dim", "32").returncode != 0
