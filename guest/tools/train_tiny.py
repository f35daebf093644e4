#!/usr/bin/env python3
"""Trains the tiny llama2-architecture story model the reference guest ships.

Tool-only: needs torch (a separate venv, never a runtime dependency of pytest-baremetal).

    PYTHONPATH=/work/main /work/torchenv/bin/python guest/tools/train_tiny.py \
        --out guest/models/tiny

Steps: generate the story corpus (make_corpus.py, seeded), learn a byte-fallback BPE
vocabulary (pytest_baremetal.llama.bpe), tokenize every story as BOS + encode(story), train
on CPU with fixed seeds and deterministic algorithms, then write model.bin (llama2.c format,
shared classifier), tokenizer.bin and words.txt (the corpus's word list, for tests).

The network is exactly llama2.c's forward pass: RMSNorm (eps 1e-5), RoPE on interleaved pairs
(q[2j], q[2j+1]) of each head with freq_j = 10000^(-2j/head_size), grouped-query attention
(kv_head = head // (n_heads // n_kv_heads)), SwiGLU FFN w2(silu(w1 x) * w3 x), final RMSNorm,
classifier = token embedding.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_corpus

from pytest_baremetal.llama import bpe, checkpoint, tokenizer_file

EPS = 1e-5


@dataclass
class Hyper:
    dim: int = 128
    hidden_dim: int = 384
    n_layers: int = 4
    n_heads: int = 8
    n_kv_heads: int = 4
    vocab_size: int = 1024
    seq_len: int = 256
    batch: int = 16
    steps: int = 700
    threads: int = 1
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup: int = 50
    weight_decay: float = 0.1
    seed: int = 1337
    corpus_seed: int = 1
    corpus_mb: float = 4.0


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


def rope_tables(h: Hyper) -> tuple[torch.Tensor, torch.Tensor]:
    head_size = h.dim // h.n_heads
    # llama2.c: freq = 1 / 10000^((i % head_size) / head_size) for even i, pair (i, i+1)
    freqs = 1.0 / (10000.0 ** (torch.arange(0, head_size, 2, dtype=torch.float64) / head_size))
    angles = torch.outer(torch.arange(h.seq_len, dtype=torch.float64), freqs)
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (batch, time, heads, head_size); rotate interleaved pairs (2j, 2j+1)
    b, t, nh, hs = x.shape
    pairs = x.reshape(b, t, nh, hs // 2, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    c = cos[:t].view(1, t, 1, hs // 2)
    s = sin[:t].view(1, t, 1, hs // 2)
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).reshape(b, t, nh, hs)


class Block(nn.Module):
    def __init__(self, h: Hyper) -> None:
        super().__init__()
        self.h = h
        hs = h.dim // h.n_heads
        self.attention_norm = RMSNorm(h.dim)
        self.wq = nn.Linear(h.dim, h.n_heads * hs, bias=False)
        self.wk = nn.Linear(h.dim, h.n_kv_heads * hs, bias=False)
        self.wv = nn.Linear(h.dim, h.n_kv_heads * hs, bias=False)
        self.wo = nn.Linear(h.n_heads * hs, h.dim, bias=False)
        self.ffn_norm = RMSNorm(h.dim)
        self.w1 = nn.Linear(h.dim, h.hidden_dim, bias=False)
        self.w2 = nn.Linear(h.hidden_dim, h.dim, bias=False)
        self.w3 = nn.Linear(h.dim, h.hidden_dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        h = self.h
        b, t, _ = x.shape
        hs = h.dim // h.n_heads
        xn = self.attention_norm(x)
        q = apply_rope(self.wq(xn).view(b, t, h.n_heads, hs), cos, sin)
        k = apply_rope(self.wk(xn).view(b, t, h.n_kv_heads, hs), cos, sin)
        v = self.wv(xn).view(b, t, h.n_kv_heads, hs)
        group = h.n_heads // h.n_kv_heads
        # query head i uses kv head i // group
        k = k.repeat_interleave(group, dim=2)
        v = v.repeat_interleave(group, dim=2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs) + mask[:t, :t]
        att = torch.softmax(scores, dim=-1) @ v
        x = x + self.wo(att.transpose(1, 2).reshape(b, t, h.n_heads * hs))
        xn = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(xn)) * self.w3(xn))


class Tiny(nn.Module):
    def __init__(self, h: Hyper) -> None:
        super().__init__()
        self.h = h
        self.tok = nn.Embedding(h.vocab_size, h.dim)
        self.layers = nn.ModuleList(Block(h) for _ in range(h.n_layers))
        self.norm = RMSNorm(h.dim)
        cos, sin = rope_tables(h)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        mask = torch.full((h.seq_len, h.seq_len), float("-inf")).triu(1)
        self.register_buffer("mask", mask, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * h.n_layers) if name.endswith(("wo.weight",
                                                                          "w2.weight")) else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin, self.mask)
        return self.norm(x) @ self.tok.weight.T  # shared classifier


def export(model: Tiny, h: Hyper, path: Path) -> checkpoint.Config:
    config = checkpoint.Config(h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads,
                               h.vocab_size, h.seq_len, shared_classifier=True)

    def stack(attr: str) -> np.ndarray:
        parts = []
        for layer in model.layers:
            module = getattr(layer, attr)
            parts.append(module.weight.detach().float().numpy())
        return np.stack(parts).astype(np.float32)

    weights = {
        "token_embedding": model.tok.weight.detach().float().numpy().astype(np.float32),
        "rms_att": stack("attention_norm"), "wq": stack("wq"), "wk": stack("wk"),
        "wv": stack("wv"), "wo": stack("wo"), "rms_ffn": stack("ffn_norm"),
        "w1": stack("w1"), "w2": stack("w2"), "w3": stack("w3"),
        "rms_final": model.norm.weight.detach().float().numpy().astype(np.float32),
    }
    checkpoint.save(path, config, weights)
    return config


def load_into(model: Tiny, path: Path) -> None:
    """Loads a model.bin written by export (round-trip check of the export)."""
    ck = checkpoint.load(path)
    w = {k: torch.from_numpy(np.array(v)) for k, v in ck.weights.items()}
    with torch.no_grad():
        model.tok.weight.copy_(w["token_embedding"])
        model.norm.weight.copy_(w["rms_final"])
        for i, layer in enumerate(model.layers):
            layer.attention_norm.weight.copy_(w["rms_att"][i])
            layer.ffn_norm.weight.copy_(w["rms_ffn"][i])
            for name in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
                getattr(layer, name).weight.copy_(w[name][i])


@torch.no_grad()
def greedy_ids(model: Tiny, vocab: tokenizer_file.Vocabulary, prompt: str,
               steps: int) -> tuple[list[int], list[int]]:
    """(prompt ids, generated ids) under the guest's greedy generation rules."""
    ids = bpe.encode(vocab, prompt)
    prompt_ids = list(ids)
    out: list[int] = []
    for _ in range(steps):
        if len(ids) >= model.h.seq_len:
            break
        logits = model(torch.tensor([ids]))[0, -1]
        nxt = int(torch.argmax(logits))  # lowest id on ties
        if nxt in (tokenizer_file.BOS, tokenizer_file.EOS):
            break
        out.append(nxt)
        ids.append(nxt)
    return prompt_ids, out


def write_samples(model: Tiny, vocab: tokenizer_file.Vocabulary, path: Path) -> None:
    """samples.json: torch's greedy ids and text for PROMPTS (64 steps), for tests."""
    samples = []
    for prompt in PROMPTS:
        prompt_ids, out = greedy_ids(model, vocab, prompt, 64)
        text = bpe.decode(vocab, out, prev_id=prompt_ids[-1]).decode("utf-8", "replace")
        samples.append({"prompt": prompt, "prompt_ids": prompt_ids, "ids": out, "text": text})
        print(f"sample: {prompt!r} -> {text!r}", flush=True)
    path.write_text(json.dumps(samples, indent=1) + "\n", encoding="utf-8")


def lr_at(h: Hyper, step: int) -> float:
    if step < h.warmup:
        return h.lr * (step + 1) / h.warmup
    progress = (step - h.warmup) / max(1, h.steps - h.warmup)
    return h.min_lr + 0.5 * (h.lr - h.min_lr) * (1 + math.cos(math.pi * progress))


PROMPTS = ["Once upon a time", "Lily and her dog", "One day, Tom", "The little cat"]


def main() -> int:
    parser = argparse.ArgumentParser(description="train the tiny story model")
    parser.add_argument("--out", type=Path, default=Path("guest/models/tiny"))
    parser.add_argument("--samples-only", action="store_true",
                        help="load OUT/model.bin and OUT/tokenizer.bin, rewrite samples.json")
    defaults = Hyper()
    for key, value in asdict(defaults).items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args()
    h = Hyper(**{k: getattr(args, k) for k in asdict(defaults)})

    # One thread: on the shared 2-core machine two threads ran 2.5x slower than one.
    torch.set_num_threads(h.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(h.seed)
    torch.use_deterministic_algorithms(True)
    print("hyper-parameters:", asdict(h), flush=True)
    if args.samples_only:
        config = checkpoint.read_config(args.out / "model.bin")
        h.dim, h.hidden_dim, h.n_layers = config.dim, config.hidden_dim, config.n_layers
        h.n_heads, h.n_kv_heads = config.n_heads, config.n_kv_heads
        h.vocab_size, h.seq_len = config.vocab_size, config.seq_len
        model = Tiny(h)
        load_into(model, args.out / "model.bin")
        model.eval()
        vocab = tokenizer_file.load(args.out / "tokenizer.bin", h.vocab_size)
        write_samples(model, vocab, args.out / "samples.json")
        return 0

    start = time.time()
    stories = make_corpus.generate(h.corpus_seed, h.corpus_mb)
    vocab = bpe.train(stories, h.vocab_size)
    if len(vocab) != h.vocab_size:
        raise SystemExit(f"BPE made only {len(vocab)} pieces of {h.vocab_size}")
    encoder = bpe.SegmentEncoder(vocab)
    stream: list[int] = []
    for story in stories:
        stream.extend(encoder.encode(story))  # BOS + story; stories are BOS-separated
    data = torch.tensor(stream, dtype=torch.long)
    split = int(len(data) * 0.98)
    train_data, val_data = data[:split], data[split:]
    words = sorted({w.lower() for s in stories for w in re.findall(r"[A-Za-z']+", s)})
    print(f"corpus: {len(stories)} stories, {sum(len(s) for s in stories)} chars, "
          f"{len(data)} tokens ({sum(len(s) for s in stories) / len(data):.2f} chars/token), "
          f"{len(words)} distinct words, prepared in {time.time() - start:.1f}s", flush=True)

    model = Tiny(h)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters", flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": h.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=h.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(h.seed)

    def batch(source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(source) - h.seq_len - 1, (h.batch,), generator=gen)
        x = torch.stack([source[s : s + h.seq_len] for s in starts.tolist()])
        y = torch.stack([source[s + 1 : s + h.seq_len + 1] for s in starts.tolist()])
        return x, y

    @torch.no_grad()
    def val_loss() -> float:
        model.eval()
        losses = []
        for i in range(8):
            s = i * h.seq_len
            x = val_data[s : s + h.seq_len].view(1, -1)
            y = val_data[s + 1 : s + h.seq_len + 1].view(1, -1)
            losses.append(float(F.cross_entropy(model(x).view(-1, h.vocab_size), y.view(-1))))
        model.train()
        return sum(losses) / len(losses)

    train_start = time.time()
    loss_value = float("nan")
    for step in range(h.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(h, step)
        x, y = batch(train_data)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, h.vocab_size), y.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_value = loss.item()
        if step % 50 == 0 or step == h.steps - 1:
            elapsed = time.time() - train_start
            print(f"step {step:5d} loss {loss_value:.4f} lr {lr_at(h, step):.2e} "
                  f"{elapsed:7.1f}s", flush=True)
        if step % 250 == 0 and step:
            print(f"  val loss {val_loss():.4f}", flush=True)
    train_time = time.time() - train_start
    final_val = val_loss()
    print(f"trained {h.steps} steps in {train_time:.1f}s; final train loss {loss_value:.4f}, "
          f"val loss {final_val:.4f}", flush=True)

    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    config = export(model, h, args.out / "model.bin")
    tokenizer_file.save(args.out / "tokenizer.bin", list(vocab.pieces), list(vocab.scores))
    (args.out / "words.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'model.bin'} ({config.file_size()} bytes, "
          f"{config.param_count()} params), {args.out / 'tokenizer.bin'}, words.txt")
    # samples from the exported file, which also checks the export round trip
    exported = Tiny(h)
    load_into(exported, args.out / "model.bin")
    exported.eval()
    write_samples(exported, vocab, args.out / "samples.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
