"""Byte-fallback BPE: training a llama2.c vocabulary, and llama2.c's encode and decode.

Vocabulary layout produced by :func:`train`: ids 0, 1, 2 are ``<unk>``, ``<s>``, ``</s>``;
ids 3..258 are the byte tokens ``<0x00>``..``<0xFF>``; then one piece per code point seen in
the training text (the single space always among them); then the merged pieces in the order
they were learned. Merge number ``r`` (0-based) has score ``-r``, so llama2.c's greedy rule
("merge the adjacent pair whose concatenation has the highest score, leftmost on ties")
applies the merges in the order they were learned. Code-point pieces score below every merge,
special and byte tokens score 0 (none of them can be formed by concatenating other pieces).

:func:`encode` and :func:`decode_piece` follow guest/MARKERS.md ("Algorithms a host reference
must reproduce") and guest/src/tokenizer.c, i.e. llama2.c's ``encode`` and ``decode`` with
three differences for malformed vocabularies only: no dummy prefix when there is no ``" "``
piece (llama2.c adds id -1), ``<unk>`` for a byte token the vocabulary lacks, and no -1e10
floor on merge scores. Byte tokens take part in merges by their piece text (``<0x61>``), as
in llama2.c.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise

from pytest_baremetal.llama.tokenizer_file import BOS, BYTE_BASE, Vocabulary

UNK = 0
SPECIAL_PIECES = (b"<unk>", b"<s>", b"</s>")
_BYTE_PIECE = re.compile(rb"<0x([0-9A-Fa-f]{2})>")
# Pre-tokenization used for training: an optional leading space, then a run of one class
# (ASCII letters, digits, anything else but space), or a lone space. Learned pieces never
# straddle two of these segments, so greedy encoding of a text equals the concatenation of
# the encodings of its segments (see encode_fast).
_SEGMENT = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9 ]+| ")


def byte_piece(value: int) -> bytes:
    """The piece of the byte-fallback token for ``value`` (``<0x41>`` for 0x41)."""
    return b"<0x%02X>" % value


class _Index:
    """Piece -> id lookup for a vocabulary (the lowest id when a piece is repeated)."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.ids: dict[bytes, int] = {}
        for index, piece in enumerate(vocab.pieces):
            self.ids.setdefault(piece, index)


_INDEX_CACHE: dict[int, _Index] = {}


def _index(vocab: Vocabulary) -> _Index:
    cached = _INDEX_CACHE.get(id(vocab))
    if cached is None or cached.vocab is not vocab:
        if len(_INDEX_CACHE) > 16:
            _INDEX_CACHE.clear()
        cached = _Index(vocab)
        _INDEX_CACHE[id(vocab)] = cached
    return cached


def _initial_tokens(index: _Index, text: str, bos: bool, dummy_prefix: bool = True) -> list[int]:
    ids = index.ids
    tokens: list[int] = [BOS] if bos else []
    if text and dummy_prefix:
        # The dummy prefix; like the guest (guest/src/tokenizer.c), nothing is added when the
        # vocabulary has no " " piece (llama2.c would add id -1).
        space = ids.get(b" ")
        if space is not None:
            tokens.append(space)
    size = len(index.vocab)
    for char in text:
        raw = char.encode("utf-8")
        found = ids.get(raw)
        if found is not None:
            tokens.append(found)
        else:
            # byte fallback; <unk> when a (tiny) vocabulary lacks the byte token, as the guest
            tokens.extend(BYTE_BASE + byte if BYTE_BASE + byte < size else UNK for byte in raw)
    return tokens


def encode(vocab: Vocabulary, text: str, bos: bool = True) -> list[int]:
    """llama2.c's prompt encoding (BOS, dummy-prefix space, code points with byte fallback,
    then highest-score merges, leftmost on ties). No EOS is added."""
    return _encode(vocab, text, bos, dummy_prefix=True)


def _encode(vocab: Vocabulary, text: str, bos: bool, dummy_prefix: bool) -> list[int]:
    index = _index(vocab)
    tokens = _initial_tokens(index, text, bos, dummy_prefix)
    n = len(tokens)
    if n < 2:
        return tokens
    pieces = vocab.pieces
    scores = vocab.scores
    ids = index.ids
    # A doubly linked list of live tokens; a node keeps the position of its first original
    # token, so among equal scores the smallest position is the leftmost pair.
    token = tokens[:]
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    version = [0] * n
    # (-score, left position, left version, right position, right version, merged id)
    Entry = tuple[float, int, int, int, int, int]
    heap: list[Entry] = []

    def candidate(left: int) -> Entry | None:
        right = nxt[left]
        if right >= n:
            return None
        merged = ids.get(pieces[token[left]] + pieces[token[right]])
        if merged is None:
            return None
        return (-scores[merged], left, version[left], right, version[right], merged)

    for position in range(n - 1):
        entry = candidate(position)
        if entry is not None:
            heap.append(entry)
    heapq.heapify(heap)

    def push_heap(left: int) -> None:
        entry = candidate(left)
        if entry is not None:
            heapq.heappush(heap, entry)

    while heap:
        _, left, left_version, right, right_version, merged = heapq.heappop(heap)
        # Stale when either token changed since the pair was queued (a merge bumps the
        # surviving node's version and marks the absorbed one dead with -1).
        if version[left] != left_version or version[right] != right_version:
            continue
        token[left] = merged
        version[left] += 1
        version[right] = -1  # dead
        after = nxt[right]
        nxt[left] = after
        if after < n:
            prv[after] = left
        if prv[left] >= 0:
            push_heap(prv[left])
        push_heap(left)

    result = []
    node = 0
    while node < n:
        result.append(token[node])
        node = nxt[node]
    return result


def encode_naive(vocab: Vocabulary, text: str, bos: bool = True) -> list[int]:
    """A literal transcription of the guest's (llama2.c's) quadratic merge loop, a test
    oracle. Unlike llama2.c, which starts from a best score of -1e10, any score merges (as
    in MARKERS.md and guest/src/tokenizer.c)."""
    index = _index(vocab)
    tokens = _initial_tokens(index, text, bos)
    while True:
        best_score = 0.0
        best_id = -1
        best_at = -1
        for i in range(len(tokens) - 1):
            merged = index.ids.get(vocab.pieces[tokens[i]] + vocab.pieces[tokens[i + 1]])
            if merged is not None and (best_id < 0 or vocab.scores[merged] > best_score):
                best_score = vocab.scores[merged]
                best_id = merged
                best_at = i
        if best_at < 0:
            return tokens
        tokens[best_at : best_at + 2] = [best_id]


def decode_piece(vocab: Vocabulary, prev_id: int, token_id: int) -> bytes:
    """The bytes printed for ``token_id`` after ``prev_id``: after BOS a leading space is
    dropped; a piece ``<0xHH>`` is the byte HH."""
    piece = vocab.pieces[token_id]
    if prev_id == BOS and piece[:1] == b" ":
        piece = piece[1:]
    match = _BYTE_PIECE.fullmatch(piece)
    if match is not None:
        return bytes([int(match.group(1), 16)])
    return piece


def decode(vocab: Vocabulary, ids: Sequence[int], prev_id: int = BOS) -> bytes:
    """The concatenated :func:`decode_piece` output of ``ids`` (BOS itself, when it is the
    first id, prints nothing), so ``decode(v, encode(v, s)) == s.encode()``."""
    out = bytearray()
    items = list(ids)
    if items and items[0] == BOS:
        prev_id = BOS
        items = items[1:]
    for token_id in items:
        out += decode_piece(vocab, prev_id, token_id)
        prev_id = token_id
    return bytes(out)


def segments(text: str) -> list[str]:
    """The training pre-tokenization of ``text`` (its pieces never cross these)."""
    return _SEGMENT.findall(text)


class SegmentEncoder:
    """Fast encoding of long texts for a vocabulary made by :func:`train`: the text is split
    into segments that no piece crosses and each distinct segment is encoded once."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.cache: dict[str, list[int]] = {}

    def encode(self, text: str, bos: bool = True) -> list[int]:
        tokens: list[int] = [BOS] if bos else []
        if not text:
            return tokens
        for segment in segments(" " + text):
            cached = self.cache.get(segment)
            if cached is None:
                cached = _encode(self.vocab, segment, bos=False, dummy_prefix=False)
                self.cache[segment] = cached
            tokens.extend(cached)
        return tokens


def train(texts: Iterable[str], vocab_size: int, min_pair_count: int = 2) -> Vocabulary:
    """Learns a byte-fallback BPE vocabulary of at most ``vocab_size`` pieces.

    Each text is encoded as llama2.c would see it (with the dummy-prefix space) and split
    into :func:`segments`; merges are the most frequent adjacent pairs (ties: the pair with
    the smallest ids), counted over the segments, until the vocabulary is full or no pair
    occurs ``min_pair_count`` times.
    """
    segment_counts: Counter[str] = Counter()
    for text in texts:
        if text:
            segment_counts.update(segments(" " + text))
    char_counts: Counter[str] = Counter()
    for segment, count in segment_counts.items():
        for char in segment:
            char_counts[char] += count
    char_counts[" "] += 0
    chars = sorted(char_counts, key=lambda c: (-char_counts[c], ord(c)))
    pieces: list[bytes] = list(SPECIAL_PIECES) + [byte_piece(b) for b in range(256)]
    scores: list[float] = [0.0] * len(pieces)
    if len(pieces) + len(chars) > vocab_size:
        raise ValueError(f"vocab_size={vocab_size} is too small for the {len(chars)} "
                         f"characters of the text (need {len(pieces) + len(chars)})")
    piece_id: dict[bytes, int] = {}
    for char in chars:
        piece_id[char.encode("utf-8")] = len(pieces)
        pieces.append(char.encode("utf-8"))
        scores.append(0.0)  # set below, once the number of merges is known

    words: list[list[int]] = []
    counts: list[int] = []
    for segment, count in segment_counts.items():
        words.append([piece_id[c.encode("utf-8")] for c in segment])
        counts.append(count)
    pair_counts: Counter[tuple[int, int]] = Counter()
    where: dict[tuple[int, int], set[int]] = {}
    for w, word in enumerate(words):
        for pair in pairwise(word):
            pair_counts[pair] += counts[w]
            where.setdefault(pair, set()).add(w)

    merge_ranks: dict[int, int] = {}
    while len(pieces) < vocab_size and pair_counts:
        best = max(pair_counts.items(), key=lambda item: (item[1], -item[0][0], -item[0][1]))
        (left, right), best_count = best
        if best_count < min_pair_count:
            break
        merged_piece = pieces[left] + pieces[right]
        merged = piece_id.get(merged_piece)
        if merged is None:
            merged = len(pieces)
            piece_id[merged_piece] = merged
            pieces.append(merged_piece)
            scores.append(0.0)
            merge_ranks[merged] = len(merge_ranks)
        for w in sorted(where.get((left, right), ())):
            word = words[w]
            for pair in pairwise(word):
                pair_counts[pair] -= counts[w]
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
            out: list[int] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == left and word[i + 1] == right:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            words[w] = out
            for pair in pairwise(out):
                pair_counts[pair] += counts[w]
                where.setdefault(pair, set()).add(w)
        pair_counts.pop((left, right), None)
        where.pop((left, right), None)

    n_merges = len(merge_ranks)
    for token_id, rank in merge_ranks.items():
        scores[token_id] = float(-rank)
    first_char = len(SPECIAL_PIECES) + 256
    for offset in range(len(chars)):
        scores[first_char + offset] = float(-(n_merges + offset))
    max_len = max(len(p) for p in pieces)
    return Vocabulary(tuple(pieces), tuple(scores), max_len)
