"""The host reference for one boot: the model and tokenizer the guest loaded, its settings,
and the NumPy checks of what it generated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pytest_baremetal.errors import ConfigError
from pytest_baremetal.llama import bpe, tokenizer_file
from pytest_baremetal.llama.checkpoint import read_config
from pytest_baremetal.llama.reference import GenerationCheck, Transformer, check_generation
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
    steps: int
    temperature: float
    topp: float
    seed: int

    @property
    def transformer(self) -> Transformer:
        return _transformer(self.model_path, self.model_path.stat().st_mtime_ns)

    @property
    def vocab(self) -> Vocabulary:
        size = read_config(self.model_path).vocab_size
        return _vocabulary(self.tokenizer_path, size, self.tokenizer_path.stat().st_mtime_ns)

    def encode(self, text: str) -> list[int]:
        return bpe.encode(self.vocab, text)

    def decode(self, prev_id: int, ids: Sequence[int]) -> str:
        return bpe.decode(self.vocab, ids, prev_id).decode("utf-8", errors="replace")

    def check(self, generation: Generation) -> GenerationCheck:
        """Teacher-forces the guest's tokens through the reference, step by step."""
        return check_generation(
            self.transformer, generation.prompt_ids, generation.ids,
            temperature=self.temperature, topp=self.topp, seed=self.seed,
            steps=self.steps, vocab=self.vocab,
        )


def for_boot(cfg_fields: Mapping[str, object], files: Mapping[str, Path]) -> HostReference:
    """The reference for a boot, from its `[cfg]` event and the files on its disk."""
    def file(key: str) -> Path:
        name = str(cfg_fields.get(key, ""))
        if name not in files:
            raise ConfigError(f"the guest loaded {key} {name!r}, which is not among the files "
                              f"the plugin put on its disk ({', '.join(files) or 'none'})")
        return files[name]

    return HostReference(
        model_path=file("model"),
        tokenizer_path=file("tokenizer"),
        prompt=str(cfg_fields["prompt"]),
        steps=int(str(cfg_fields["steps"])),
        temperature=float(str(cfg_fields["temperature"])),
        topp=float(str(cfg_fields["topp"])),
        seed=int(str(cfg_fields["seed"])),
    )
