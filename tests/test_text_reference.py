"""The text-only reference check: the reference guest's own output (its host build, the same
C core) with the id lines removed is segmented back into exactly the ids it printed, and a
changed word is reported at the step it changes, in text and in tokens. Prompts encode by
BPE or by greedy longest match, as the profile names."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_baremetal.errors import ConfigError
from pytest_baremetal.host_reference import HostReference, for_boot
from pytest_baremetal.llama import bpe
from pytest_baremetal.llama.text_check import encode_greedy
from pytest_baremetal.llama.tokenizer_file import Vocabulary
from pytest_baremetal.markers import load_profile

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "guest" / "models" / "tiny"


def run_host_guest(tmp_path: Path, **cfg: object) -> dict[str, object]:
    """The host build of the reference guest: its prompt, text and printed ids."""
    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.skip("needs make and a C compiler for the guest's host build")
    subprocess.run(["make", "-s", "-C", str(ROOT / "guest"), "host"], check=True,
                   capture_output=True, timeout=300)
    for name in ("model.bin", "tokenizer.bin"):
        shutil.copy(TINY / name, tmp_path / name)
    lines = [f"{k}={v}" for k, v in {"bench": 0, "repeats": 1, **cfg}.items()]
    (tmp_path / "run.cfg").write_text("\n".join(lines) + "\n")
    out = subprocess.run([str(ROOT / "guest" / "build" / "host" / "bm-guest"), "run.cfg"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True)
    text_lines: list[str] = []
    inside = False
    result: dict[str, object] = {}
    for line in out.stdout.splitlines():
        if line.startswith("[gen] begin"):
            inside = True
        elif line.startswith("[gen] end"):
            inside = False
        elif inside:
            text_lines.append(line)
        elif line.startswith("[gen] ids="):
            result["ids"] = [int(v) for v in line.split("=", 1)[1].split(",")]
        elif line.startswith("[gen] prompt_ids="):
            result["prompt_ids"] = [int(v) for v in line.split("=", 1)[1].split(",")]
    result["text"] = "\n".join(text_lines)
    return result


def reference(tmp_path: Path, encoder: str = "bpe", **cfg: object) -> HostReference:
    fields = {"model": "model.bin", "tokenizer": "tokenizer.bin", **cfg}
    files = {"model.bin": tmp_path / "model.bin", "tokenizer.bin": tmp_path / "tokenizer.bin"}
    return for_boot(fields, files, encoder)


@pytest.mark.parametrize("settings", [
    {"prompt": '"Lily and her dog"', "steps": 48, "temperature": 0.0, "seed": 1},
    {"prompt": '"Once upon a time"', "steps": 40, "temperature": 0.8, "topp": 0.9, "seed": 7},
])
def test_guest_text_segments_into_its_printed_ids(tmp_path: Path,
                                                  settings: dict[str, object]) -> None:
    guest = run_host_guest(tmp_path, **settings)
    ref = reference(tmp_path, **{**settings, "prompt": str(settings["prompt"]).strip('"')})
    assert ref.encode(ref.prompt) == guest["prompt_ids"]
    check = ref.check_text(str(guest["text"]))
    assert check.ok, check.describe()
    assert list(check.ids) == guest["ids"], check.describe()
    assert "matches the reference" in check.describe()


def test_a_changed_word_is_reported_at_its_step(tmp_path: Path) -> None:
    guest = run_host_guest(tmp_path, prompt='"Lily and her dog"', steps=48, temperature=0.0)
    ref = reference(tmp_path, prompt="Lily and her dog", steps=48, temperature=0.0)
    ids = list(guest["ids"])  # type: ignore[call-overload]
    vocab = ref.vocab
    step = 12
    agreed = bpe.decode(vocab, ids[:step], prev_id=ref.encode(ref.prompt)[-1]).decode()
    changed = agreed + " zebra" + " and more text"
    check = ref.check_text(changed)
    assert not check.ok
    assert len(check.ids) == step and check.agreed_text == agreed, check.describe()
    message = check.describe()
    assert f"text diverged at step {step}" in message, message
    expected = bpe.decode_piece(vocab, ids[step - 1], ids[step]).decode()
    assert repr(expected) in message and "' zebra and more text'" in message, message
    assert "reference top candidates" in message and "most likely" in message, message


def test_a_text_that_runs_past_the_steps_is_reported(tmp_path: Path) -> None:
    guest = run_host_guest(tmp_path, prompt='"Lily and her dog"', steps=16, temperature=0.0)
    ref = reference(tmp_path, prompt="Lily and her dog", steps=10, temperature=0.0)
    check = ref.check_text(str(guest["text"]))
    assert not check.ok and "after the 10 tokens the reference allows" in check.describe()


def test_greedy_longest_match_differs_from_bpe_where_merges_disagree() -> None:
    # BPE applies the best-scored merge first (" a", then "bc", then "bcd"): " a" + "bcd".
    # Longest match takes the longest piece from the left: " ab" + "cd".
    pieces = [b"<unk>", b"<s>", b"</s>", *[bpe.byte_piece(i) for i in range(256)],
              b" ", b"a", b"b", b"c", b"d", b" a", b"bc", b"cd", b" ab", b"bcd"]
    scores = [0.0] * 259 + [-100.0] * 5 + [-1.0, -2.0, -3.0, -4.0, -5.0]
    vocab = Vocabulary(tuple(pieces), tuple(scores), max(len(p) for p in pieces))
    index = {p: i for i, p in enumerate(pieces)}
    greedy = encode_greedy(vocab, "abcd")
    assert greedy == [1, index[b" ab"], index[b"cd"]]
    merged = bpe.encode(vocab, "abcd")
    assert merged != greedy
    assert bpe.decode(vocab, greedy) == bpe.decode(vocab, merged) == b"abcd"


def test_the_profile_names_the_encoder(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: repl\nreference: {encoder: greedy}\nevents: {}\n")
    assert load_profile(path).encoder == "greedy"
    path.write_text("name: repl\nevents: {}\n")
    assert load_profile(path).encoder == "bpe"
    path.write_text("name: repl\nreference: {encoder: wordpiece}\nevents: {}\n")
    with pytest.raises(ConfigError, match=r"reference\.encoder.*wordpiece"):
        load_profile(path)


def test_a_build_without_cfg_names_the_missing_prompt(tmp_path: Path) -> None:
    files = {"model.bin": TINY / "model.bin", "tokenizer.bin": TINY / "tokenizer.bin"}
    with pytest.raises(ConfigError, match=r"bm_reference\(dut, prompt="):
        for_boot({}, files)
    ref = for_boot({"prompt": "Once upon a time"}, files, "greedy")
    assert ref.steps is None and ref.temperature == 0.0 and ref.encoder == "greedy"
    assert bpe.decode(ref.vocab, ref.encode(ref.prompt)) == b"Once upon a time"
