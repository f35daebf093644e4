"""The host reference for one boot: the model and tokenizer the guest loaded, its settings,
and the NumPy checks of what it generated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pytest_baremetal.errors import ConfigError
from pytest_baremetal.llama import bpe, text_check, tokenizer_file
from pytest_baremetal.llama.checkpoint import read_config
from pytest_baremetal.llama.reference import GenerationCheck, Transformer, check_generation
from pytest_baremetal.llama.text_check import TextCheck
from pytest_baremetal.llama.tokenizer_file import Vocabulary
from pytest_baremetal.markers import Generation


@lru_cache(maxsize=4)
def _transformer(path: Path, mtime_ns: int) -> Transformer:
    return Transformer(path)


@lru_cache(maxsize=4)
def _vocabulary(path: Path, vocab_size: int, mtime_ns: int) -> Vocabulary:
    return tokenizer_file.load(path, vocab_size)


@dataclass
class HostReference:
    """What the guest should have produced, computed on the host."""

    model_path: Path
    tokenizer_path: Path
    prompt: str
    steps: int | None  # None: as many as the model's seq_len allows
    temperature: float
    topp: float
    seed: int
    encoder: str = "bpe"  # how the build encodes prompts: bpe or greedy (profile `reference`)

    @property
    def transformer(self) -> Transformer:
        return _transformer(self.model_path, self.model_path.stat().st_mtime_ns)

    @property
    def vocab(self) -> Vocabulary:
        size = read_config(self.model_path).vocab_size
        return _vocabulary(self.tokenizer_path, size, self.tokenizer_path.stat().st_mtime_ns)

    def encode(self, text: str) -> list[int]:
        return text_check.encode(self.vocab, text, self.encoder)

    def decode(self, prev_id: int, ids: Sequence[int]) -> str:
        return bpe.decode(self.vocab, ids, prev_id).decode("utf-8", errors="replace")

    def check(self, generation: Generation) -> GenerationCheck | TextCheck:
        """Teacher-forces the guest's tokens through the reference, step by step; a build
        that prints no ids has its text checked instead (`check_text`)."""
        if not generation.ids and generation.text.strip():
            return self.check_text(generation.text, generation.prompt_ids or None)
        return check_generation(
            self.transformer, generation.prompt_ids, generation.ids,
            temperature=self.temperature, topp=self.topp, seed=self.seed,
            steps=self.steps, vocab=self.vocab,
        )


    def check_text(self, text: str, prompt_ids: Sequence[int] | None = None) -> TextCheck:
        """Segments the guest's generated text guided by the reference and checks it; the
        first divergence is reported in text and in tokens."""
        ids = list(prompt_ids) if prompt_ids else self.encode(self.prompt)
        return text_check.check_text(
            self.transformer, self.vocab, ids, text, temperature=self.temperature,
            topp=self.topp, seed=self.seed, steps=self.steps)


def for_boot(cfg_fields: Mapping[str, object], files: Mapping[str, Path],
             encoder: str = "bpe") -> HostReference:
    """The reference for a boot, from its `[cfg]` event (or the same keys given by the test)
    and the files on its disk."""
    def file(key: str) -> Path:
        name = str(cfg_fields.get(key, ""))
        if not name and len(files) > 0 and f"{key}.bin" in files:
            name = f"{key}.bin"  # a build that names no files: the usual names
        if name not in files:
            raise ConfigError(f"the guest loaded {key} {name!r}, which is not among the files "
                              f"the plugin put on its disk ({', '.join(files) or 'none'})")
        return files[name]

    if "prompt" not in cfg_fields:
        raise ConfigError("the boot names no prompt: the profile has no `cfg` event with a "
                          "prompt field; give it to the fixture, e.g. bm_reference(dut, "
                          "prompt='Once upon a time', steps=64)")
    if encoder not in text_check.ENCODERS:
        raise ConfigError(f"reference encoder {encoder!r}: use one of "
                          f"{', '.join(text_check.ENCODERS)}")
    steps = cfg_fields.get("steps")
    return HostReference(
        model_path=file("model"),
        tokenizer_path=file("tokenizer"),
        prompt=str(cfg_fields["prompt"]),
        steps=None if steps is None else int(str(steps)),
        temperature=float(str(cfg_fields.get("temperature", 0.0))),
        topp=float(str(cfg_fields.get("topp", 0.9))),
        seed=int(str(cfg_fields.get("seed", 42))),
        encoder=encoder,
    )
