"""The project's tokenizers compiled (numba): a whole batch of ASCII texts to token ids in
one call, the very ids of the ``tokenizers`` library.

Two tokenizers are covered, the ones textcnn trains and ships:

- the word tokenizer (:func:`~.tokenizer.train_tokenizer` ``kind="word"``): NFKC and
  lowercasing (a no-op and A-Z → a-z on ASCII), a split at whitespace (tab, line feed,
  vertical tab, form feed, carriage return, space: Rust's ``is_whitespace`` on ASCII), then
  ``WORDS_PATTERN``: a word before ``n't``, ``n't``, ``'`` + a word, a word, any other
  character alone;
- MiniLM's WordPiece (``kind="minilm-wordpiece"``): BERT's normalizer (control characters
  dropped, tab/newline/CR as spaces, lowercasing), its pre-tokenizer (whitespace splits,
  every punctuation character a token of its own) and greedy longest-match WordPiece with
  ``##`` continuations, a word of more than 100 characters being ``[UNK]``.

Any other text (one with a character past ASCII) goes to the ``tokenizers`` library, text by
text, so the ids are always exact (tested on every ASCII character, random Unicode, the
benchmark corpora and the tweets). Vocabularies become open-addressing hash tables over
the tokens' UTF-8 bytes (FNV-1a).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate

import numba
import numpy as np
from numba import njit
from tokenizers import Tokenizer

from .tokenizer import CHARS_PER_TOKEN, UNK, WORDS_PATTERN, encode_batch

WORD, WORDPIECE = 0, 1
MAX_WORD_CHARS = 100  # a longer word is [UNK] to WordPiece (max_input_chars_per_word)
PARALLEL_FROM = 2048  # texts in a batch from which threads share it


EMPTY = np.uint64(2**64 - 1)  # a free slot's last field
LOW32 = np.uint64(2**32 - 1)


@dataclass
class HashedVocabulary:
    """Tokens' bytes back to back, and an open-addressing table of 32-byte slots (FNV-1a
    of the bytes): the hash, the first 8 bytes, where the bytes start, and the id (high 32
    bits) with the length (low 32). A lookup reads one slot, and the bytes only for a token
    longer than 8 (four arrays apart, it missed the cache four times)."""

    keys: np.ndarray  # uint8
    slots: np.ndarray  # uint64, size x 4; EMPTY in the last field of a free one

    @classmethod
    def of(cls, vocab: dict[str, int]) -> HashedVocabulary:
        encoded = [t.encode("utf-8") for t in vocab]
        starts = np.zeros(len(encoded) + 1, dtype=np.int64)
        starts[1:] = np.cumsum([len(e) for e in encoded])
        keys = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        ids = np.array(list(vocab.values()), dtype=np.int64)
        size = 1 << max(4, (2 * len(encoded)).bit_length())
        slots = np.zeros((size, 4), dtype=np.uint64)
        slots[:, 3] = EMPTY
        return cls(keys, _fill(keys, starts, ids, slots))


@njit(cache=True, inline="always")
def _hash_and_head(buf, start, end):
    """FNV-1a of ``buf[start:end]``, and its first 8 bytes as one number."""
    h = np.uint64(14695981039346656037)
    head = np.uint64(0)
    for i in range(start, end):
        h ^= np.uint64(buf[i])
        h *= np.uint64(1099511628211)
        if i - start < 8:
            head |= np.uint64(buf[i]) << np.uint64(8 * (i - start))
    return h, head


@njit(cache=True)
def _fill(keys, starts, ids, slots):
    mask = np.uint64(len(slots) - 1)
    for token in range(len(starts) - 1):
        h, head = _hash_and_head(keys, starts[token], starts[token + 1])
        slot = h & mask
        while slots[slot, 3] != EMPTY:
            slot = (slot + np.uint64(1)) & mask
        length = np.uint64(starts[token + 1] - starts[token])
        slots[slot, 0], slots[slot, 1], slots[slot, 2] = h, head, np.uint64(starts[token])
        slots[slot, 3] = (np.uint64(ids[token]) << np.uint64(32)) | length
    return slots


@njit(cache=True, inline="always")
def _lookup(buf, start, end, keys, slots):
    """The id of ``buf[start:end]`` in the vocabulary, or -1."""
    mask = np.uint64(len(slots) - 1)
    h, head = _hash_and_head(buf, start, end)
    size = np.uint64(end - start)
    slot = h & mask
    while slots[slot, 3] != EMPTY:
        if slots[slot, 0] == h and slots[slot, 1] == head and slots[slot, 3] & LOW32 == size:
            a = np.int64(slots[slot, 2])
            same = True
            for i in range(8, end - start):  # the first 8 bytes matched already
                if keys[a + i] != buf[start + i]:
                    same = False
                    break
            if same:
                return np.int64(slots[slot, 3] >> np.uint64(32))
        slot = (slot + np.uint64(1)) & mask
    return -1


@njit(cache=True, inline="always")
def _is_word(c):  # \\w on ASCII: letters, digits, underscore
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95


@njit(cache=True, inline="always")
def _is_bert_punctuation(c):
    return (33 <= c <= 47) or (58 <= c <= 64) or (91 <= c <= 96) or (123 <= c <= 126)


@njit(cache=True)
def _normalise(buf, start, end, lowercase, kind, scratch):
    """The text's bytes as the normaliser leaves them, in ``scratch``; their count."""
    n = 0
    for i in range(start, end):
        c = buf[i]
        if kind == WORDPIECE:
            if c == 9 or c == 10 or c == 13:
                c = 32
            elif c < 32 or c == 127:
                continue  # a control character: dropped
        if lowercase and 65 <= c <= 90:
            c += 32
        scratch[n] = c
        n += 1
    return n


@njit(cache=True, inline="always")
def _is_space(c):
    return c == 32 or 9 <= c <= 13


@njit(cache=True)
def _word_tokens(text, n, spans):
    """Token spans of the word tokenizer's pattern in ``text[:n]`` into ``spans``; count."""
    count = 0
    i = 0
    while i < n and count < len(spans):
        c = text[i]
        if _is_space(c):
            i += 1
            continue
        if _is_word(c):
            j = i
            while j < n and _is_word(text[j]):
                j += 1
            # a word before n't (at least one character), then n't itself
            if (
                j - 1 > i
                and text[j - 1] == 110
                and j + 1 < n
                and text[j] == 39
                and text[j + 1] == 116
            ):
                spans[count, 0], spans[count, 1] = i, j - 1
                i = j - 1
            elif c == 110 and i + 2 < n and text[i + 1] == 39 and text[i + 2] == 116:
                spans[count, 0], spans[count, 1] = i, i + 3
                i += 3
            else:
                spans[count, 0], spans[count, 1] = i, j
                i = j
        elif c == 39 and i + 1 < n and _is_word(text[i + 1]):
            j = i + 1
            while j < n and _is_word(text[j]):
                j += 1
            spans[count, 0], spans[count, 1] = i, j
            i = j
        else:
            spans[count, 0], spans[count, 1] = i, i + 1
            i += 1
        count += 1
    return count


@njit(cache=True)
def _bert_words(text, n, spans):
    """BERT's pre-tokenisation of ``text[:n]``: whitespace splits, punctuation alone."""
    count = 0
    i = 0
    while i < n and count < len(spans):
        c = text[i]
        if _is_space(c):
            i += 1
            continue
        if _is_bert_punctuation(c):
            spans[count, 0], spans[count, 1] = i, i + 1
            i += 1
        else:
            j = i
            while j < n and not _is_space(text[j]) and not _is_bert_punctuation(text[j]):
                j += 1
            spans[count, 0], spans[count, 1] = i, j
            i = j
        count += 1
    return count


@njit(cache=True)
def _word_pieces(
    text, a, b, unk, keys, slots, cont_keys, cont_slots, out
):  # fmt: skip
    """The WordPiece ids of the word ``text[a:b]`` into ``out``; their count."""
    if b - a > MAX_WORD_CHARS:
        out[0] = unk
        return 1
    count = 0
    start = a
    while start < b:
        end = b
        found = -1
        while end > start:
            if start == a:
                found = _lookup(text, start, end, keys, slots)
            else:
                found = _lookup(text, start, end, cont_keys, cont_slots)
            if found >= 0:
                break
            end -= 1
        if found < 0:
            out[0] = unk
            return 1
        out[count] = found
        count += 1
        start = end
    return count


@njit(cache=True, inline="always")
def _encode_text(
    buf, start, end, kind, lowercase, unk,
    keys, slots, cont_keys, cont_slots, out, scratch, spans, piece_ids,
):  # fmt: skip
    """The token ids of ``buf[start:end]`` into ``out``, as many as it holds (the maximum
    length, or fewer when the text has fewer characters: at most one token each): their
    count, and whether the text was cut short."""
    n = _normalise(buf, start, end, lowercase, kind, scratch)
    words = _word_tokens(scratch, n, spans) if kind == WORD else _bert_words(scratch, n, spans)
    made = 0
    for w in range(words):
        a, b = spans[w, 0], spans[w, 1]
        if kind == WORD:
            if made == len(out):
                return made, True
            found = _lookup(scratch, a, b, keys, slots)
            out[made] = found if found >= 0 else unk
            made += 1
            continue
        # WordPiece: the longest known piece from the left, then ##pieces; a word with a
        # part no piece fits (or of over 100 characters) is [UNK] as a whole
        pieces = _word_pieces(
            scratch, a, b, unk, keys, slots, cont_keys, cont_slots, piece_ids,
        )  # fmt: skip
        for p in range(pieces):
            if made == len(out):
                return made, True
            out[made] = piece_ids[p]
            made += 1
    return made, False


@njit(cache=True, nogil=True)
def _encode_batch(
    buf, offsets, kind, lowercase, max_length, unk, keys, slots, cont_keys, cont_slots
):  # fmt: skip
    texts = len(offsets) - 1
    room = 0  # a text has at most one token a character, and max_length
    longest = 0
    for t in range(texts):
        room += min(max_length, offsets[t + 1] - offsets[t])
        longest = max(longest, offsets[t + 1] - offsets[t])
    out = np.empty(room, dtype=np.int64)
    out_offsets = np.zeros(texts + 1, dtype=np.int64)
    truncated = np.zeros(texts, dtype=np.bool_)
    scratch = np.empty(longest + 1, dtype=np.uint8)
    spans = np.empty((longest + 1, 2), dtype=np.int64)
    piece_ids = np.empty(MAX_WORD_CHARS + 1, dtype=np.int64)
    at = 0
    for t in range(texts):
        start, end = offsets[t], offsets[t + 1]
        made, truncated[t] = _encode_text(
            buf, start, end, kind, lowercase, unk, keys, slots, cont_keys, cont_slots,
            out[at : at + min(max_length, end - start)], scratch, spans, piece_ids,
        )  # fmt: skip
        at += made
        out_offsets[t + 1] = at
    return out[:at], out_offsets, truncated


def encode_ascii(buf, offsets, kind, lowercase, max_length, unk, first, continuation):
    """Token ids of every text ``buf[offsets[t]:offsets[t + 1]]`` (ASCII), truncated to
    ``max_length``: (ids, offsets of each text's ids, truncated). ``first`` and
    ``continuation`` are the vocabulary's word-initial and ``##`` pieces. From
    :data:`PARALLEL_FROM` texts, the batch is cut into one part a thread (numba's count),
    encoded at once (the compiled code releases the GIL)."""
    texts = len(offsets) - 1
    parts = numba.get_num_threads() if texts >= PARALLEL_FROM else 1
    vocabulary = (first.keys, first.slots, continuation.keys, continuation.slots)
    if parts <= 1:
        return _encode_batch(buf, offsets, kind, lowercase, max_length, unk, *vocabulary)
    cuts = [texts * i // parts for i in range(parts + 1)]
    done = list(
        _pool(parts).map(
            lambda a, b: _encode_batch(
                buf, offsets[a : b + 1], kind, lowercase, max_length, unk, *vocabulary
            ),
            cuts[:-1],
            cuts[1:],
        )
    )
    ids = np.concatenate([part[0] for part in done])
    lengths = np.concatenate([np.diff(part[1]) for part in done])
    out_offsets = np.zeros(texts + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    return ids, out_offsets, np.concatenate([part[2] for part in done])


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` threads (a forked child makes its own)."""
    key = (os.getpid(), threads)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="textcnn-encode")
    return _pools[key]


class CompiledEncoder:
    """Batches of texts to token ids: ASCII texts compiled, the others through the
    ``tokenizers`` library. Built by :meth:`of`, which returns None for a tokenizer it does
    not cover."""

    def __init__(self, tokenizer: Tokenizer, kind: int, lowercase: bool) -> None:
        self.tokenizer = tokenizer
        self.kind, self.lowercase = kind, lowercase
        self.max_length = tokenizer.truncation["max_length"]
        self.unk = tokenizer.token_to_id(UNK)
        self._settings = (kind, lowercase, self.max_length, self.unk)  # encode_ascii's
        vocab = tokenizer.get_vocab()
        initial = {t: i for t, i in vocab.items() if kind == WORD or not t.startswith("##")}
        continuation = {
            t[2:]: i for t, i in vocab.items() if kind == WORDPIECE and t.startswith("##")
        }
        self.tables = (HashedVocabulary.of(initial), HashedVocabulary.of(continuation or {"": 0}))

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> CompiledEncoder | None:
        spec = json.loads(tokenizer.to_str())
        if not tokenizer.truncation or spec.get("post_processor") is not None:
            return None
        model, normalizer = spec["model"], spec.get("normalizer") or {}
        pre = spec.get("pre_tokenizer") or {}
        if model["type"] == "WordLevel" and model.get("unk_token") == UNK:
            steps = [n["type"] for n in normalizer.get("normalizers", [])]
            parts = pre.get("pretokenizers", [])
            if (
                steps in (["NFKC"], ["NFKC", "Lowercase"])
                and [p["type"] for p in parts] == ["WhitespaceSplit", "Split"]
                and parts[1]["pattern"] == {"Regex": WORDS_PATTERN}
                and parts[1]["behavior"] == "Isolated"
                and not parts[1]["invert"]
            ):
                return cls(tokenizer, WORD, steps[-1] == "Lowercase")
        bert = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True}
        if (
            model["type"] == "WordPiece"
            and model.get("unk_token") == UNK
            and model.get("continuing_subword_prefix") == "##"
            and model.get("max_input_chars_per_word") == MAX_WORD_CHARS
            and all(normalizer.get(k) == v for k, v in bert.items())
            and normalizer.get("strip_accents") in (None, True)
            and normalizer.get("lowercase") is True
            and pre.get("type") == "BertPreTokenizer"
        ):
            return cls(tokenizer, WORDPIECE, True)
        return None

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, offsets, truncated): text t's ids are ``ids[offsets[t]:offsets[t + 1]]``.
        Texts are cleaned already (:func:`~.tokenizer.clean_text`)."""
        budget = self.max_length * CHARS_PER_TOKEN  # past it a text is truncated anyway
        lengths = list(map(len, texts))
        joined = "".join(texts)
        if joined.isascii() and max(lengths, default=0) <= budget:  # the common case
            offsets = np.array([0, *accumulate(lengths)], dtype=np.int64)
            buf = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            return encode_ascii(buf, offsets, *self._settings, *self.tables)
        fast = [t.isascii() for t in texts]
        cut = [t[:budget] if ok else "" for t, ok in zip(texts, fast, strict=True)]
        offsets = np.array([0, *accumulate(map(len, cut))], dtype=np.int64)
        buf = np.frombuffer("".join(cut).encode("ascii"), dtype=np.uint8)
        ids, spans, truncated = encode_ascii(buf, offsets, *self._settings, *self.tables)
        # Non-ASCII texts, and ASCII ones cut short without filling the maximum length (very
        # long words): the tokenizers library on the whole text
        slow = [
            i
            for i, (ok, n) in enumerate(zip(fast, lengths, strict=True))
            if not ok or (n > budget and not truncated[i])
        ]
        if not slow:
            return ids, spans, truncated
        encodings = encode_batch(self.tokenizer, [texts[i] for i in slow])
        parts, lengths, done = [], np.diff(spans), 0  # the compiled ids between slow texts
        for i, encoding in zip(slow, encodings, strict=True):
            parts += [ids[spans[done] : spans[i]], np.array(encoding.ids, dtype=np.int64)]
            lengths[i], truncated[i], done = len(encoding.ids), bool(encoding.overflowing), i + 1
        parts.append(ids[spans[done] :])
        spans = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=spans[1:])
        return np.concatenate(parts), spans, truncated
