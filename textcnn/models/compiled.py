"""Kim's CNN folded into n-gram tables, run by compiled code (numba): the whole forward
pass of a batch, from flat token ids to probabilities, with no per-text Python.

For every text, for every width k: each window's value is the sum of k rows of the width's
table (:class:`~.folded.FoldedTextCNN` derives them), the maximum over the windows that hold
a real token is kept per filter (with its window, for explanations), the filter's bias is
added and ReLU taken; then the classifier's dot products, the n-gram channel's hashed uni-
and bigrams (each distinct one counted once), the temperature and the softmax (or a sigmoid
per label). Every text is computed on its own, in a fixed order, so a text's scores never
depend on its batch. A large batch is shared among threads; one text runs on the calling
thread (no pool to wake).

The tables are read token by token: a token's rows of every width and offset lie together
(4.8 KB for the default model) and are read once, in order, each added to the window it
belongs to, in a ring of the k windows still open per width; a window is pooled when its
last token is in. Each window still sums its rows in offset order, as reading a window at
a time did: the same floats, and 1.2-1.35x faster on the MR texts' vocabulary, whose rows
are mostly not in cache (reading window by window jumped among k tokens' rows).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

from ..artifacts import all_finite
from .folded import channel_sum, filter_biases
from .naive_bayes import BIGRAM_HASH
from .textcnn import TextCNN

PARALLEL_FROM = 64  # texts in a batch from which the threads share it
PARTS = 64  # a large batch is cut into as many parts, each allocating its scratch once


@njit(cache=True, inline="always")
def _add(ring, at, table, token, row, n):
    """``ring[at : at + n] += table[token, row : row + n]`` by unsigned indices: no array
    views (each a reference count taken and dropped) and no negative-index checks, so LLVM
    vectorises it."""
    for f in range(n):
        ring[np.uint64(at + f)] += table[np.uint64(token), np.uint64(row + f)]


@njit(cache=True, inline="always")
def _zero(ring, at, n):
    for f in range(n):
        ring[np.uint64(at + f)] = 0.0


@njit(cache=True, inline="always")
def _dot(a, b):
    """The dot product of two float32 vectors in four running sums, every fourth term each
    (the rest in the first), then added: a fixed order, the same on every machine and in
    every batch, with four times the adds in flight of one chain (8% of the kernel)."""
    s0 = s1 = s2 = s3 = np.float32(0.0)
    most = len(a) - len(a) % 4
    for f in range(0, most, 4):
        s0 += a[f] * b[f]
        s1 += a[f + 1] * b[f + 1]
        s2 += a[f + 2] * b[f + 2]
        s3 += a[f + 3] * b[f + 3]
    for f in range(most, len(a)):
        s0 += a[f] * b[f]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, inline="always")
def _pool(ring, at, features, first, filters, positions, text, p):
    """Keep window ``p`` (``ring[at : at + filters]``) where it beats ``features[first :
    first + filters]``; with ``positions`` (explaining: it has rows), the window of each
    filter's first maximum too."""
    if positions.shape[0] > 0:
        for f in range(filters):
            value = ring[np.uint64(at + f)]
            if value > features[np.uint64(first + f)]:
                features[np.uint64(first + f)] = value
                positions[np.uint64(text), np.uint64(first + f)] = p
    else:
        for f in range(filters):
            value = ring[np.uint64(at + f)]
            best = features[np.uint64(first + f)]
            features[np.uint64(first + f)] = max(best, value)


@njit(cache=True, inline="always")
def _max_pooled(
    ids, start, length, table, bases, widths, wide, features, positions, text, ring, turns
):  # fmt: skip
    """Every filter's largest window value into ``features``: the windows of width k are
    ``length + k - 1`` (``wide``: padded with zero rows, which are not added) or
    ``max(length - k + 1, 1)`` (past the text: token 0's rows).

    The windows still open are kept in ``ring``, k x F floats per width (F filters a
    width), window p in slot -p mod k: then token i's rows for offsets 0..k-1 go to slots
    c, c + 1, ... (mod k), two runs of the ring, with c (``turns``, per width) one less
    for every token."""
    filters = len(features) // len(widths)
    features[:] = -np.inf
    longest = 0
    for w in range(len(widths)):
        longest = max(longest, widths[w])
        turns[w] = 1 % widths[w] if wide else 0
    if wide and length == 0:  # windows of padding only: zero
        ring[:] = 0.0
    for i in range(length if wide else max(length, longest)):
        token = ids[start + i] if i < length else 0
        at = 0  # the width's ring
        for w in range(len(widths)):
            k = widths[w]
            c = turns[w]
            windows = length + k - 1 if wide else max(length - k + 1, 1)
            if wide and i == 0:  # token 0 opens windows 0 .. k - 1
                _zero(ring, at, k * filters)
            elif wide or i < windows:  # window i + k - 1 (wide) or i, in slot c
                _zero(ring, at + c * filters, filters)
            row = bases[w] * filters
            if wide or k - 1 <= i < windows:  # a row for each of k windows
                split = (k - c) * filters
                _add(ring, at + c * filters, table, token, row, split)
                _add(ring, at, table, token, row + split, c * filters)
            else:  # near the ends of a narrow text: only the windows there are
                for j in range(k):
                    if 0 <= i - j < windows:
                        slot = j + c - k if j + c >= k else j + c
                        _add(ring, at + slot * filters, table, token, row + j * filters, filters)
            p = i if wide else i - k + 1  # the window token i closes, in slot c - 1
            c = c - 1 if c > 0 else k - 1
            if 0 <= p < windows:
                _pool(ring, at + c * filters, features, w * filters, filters, positions, text, p)
            turns[w] = c
            at += k * filters
    if wide:  # the last k - 1 windows end in padding
        at = 0
        for w in range(len(widths)):
            k = widths[w]
            c = turns[w]
            for p in range(length, length + k - 1):
                c = c - 1 if c > 0 else k - 1
                _pool(ring, at + c * filters, features, w * filters, filters, positions, text, p)
            at += k * filters


@njit(cache=True, inline="always")
def _one_text(
    ids, start, end, table, bases, widths, vocab_size, wide, bias, weight, head_bias,
    ngram_table, prior, ngram_weight, buckets, temperature, sigmoid, out, positions, text,
    features, grams, ring, turns,
):  # fmt: skip
    length = end - start
    _max_pooled(
        ids, start, length, table, bases, widths, wide, features, positions, text, ring, turns
    )
    done = len(features)
    classes = weight.shape[0]
    for f in range(done):
        features[f] = max(features[f] + bias[f], np.float32(0.0))
    logits = np.empty(classes, dtype=np.float32)
    for c in range(classes):
        logits[c] = head_bias[c] + _dot(weight[c], features)
    if ngram_weight != 0.0:
        count = 0
        for i in range(length):
            token = ids[start + i]
            if token != 0:
                grams[count] = token
                count += 1
            if i + 1 < length and token != 0 and ids[start + i + 1] != 0:
                grams[count] = vocab_size + (token * BIGRAM_HASH + ids[start + i + 1]) % buckets
                count += 1
        kept = grams[:count]
        kept.sort()
        sums = out[text]  # scratch until the probabilities
        sums[:] = 0.0
        for i in range(count):
            if i == 0 or kept[i] != kept[i - 1]:
                for c in range(classes):
                    sums[c] += ngram_table[kept[i], c]
        for c in range(classes):  # in PyTorch's order: the n-grams, then the prior
            logits[c] += ngram_weight * (sums[c] + prior[c])
    logits /= temperature
    if sigmoid:
        for c in range(classes):
            out[text, c] = 1.0 / (1.0 + np.exp(-logits[c]))
    else:
        top = logits.max()
        total = 0.0
        for c in range(classes):
            out[text, c] = np.exp(logits[c] - top)
            total += out[text, c]
        for c in range(classes):
            out[text, c] /= total


def _batch(parallel: bool):
    loop = prange if parallel else range

    @njit(cache=True, parallel=parallel, nogil=True)
    def forward(
        ids, offsets, table, bases, widths, vocab_size, wide, bias, weight, head_bias,
        ngram_table, prior, ngram_weight, buckets, temperature, sigmoid, out, positions,
        pooled,
    ):  # fmt: skip
        texts = len(offsets) - 1
        longest = 0
        for t in range(texts):
            longest = max(longest, offsets[t + 1] - offsets[t])
        widest = 0
        for w in range(len(widths)):
            widest = max(widest, widths[w])
        parts = min(texts, PARTS)
        for part in loop(parts):
            grams = np.empty(2 * longest + 1, dtype=np.int64)
            ring = np.empty(widest * len(bias), dtype=np.float32)
            turns = np.empty(len(widths), dtype=np.int64)
            for t in range(part * texts // parts, (part + 1) * texts // parts):
                _one_text(
                    ids, offsets[t], offsets[t + 1], table, bases, widths, vocab_size, wide,
                    bias, weight, head_bias, ngram_table, prior, ngram_weight, buckets,
                    temperature, sigmoid, out, positions, t, pooled[t], grams, ring, turns,
                )  # fmt: skip

    return forward


_serial, _parallel = _batch(False), _batch(True)


def token_major_table(model: TextCNN) -> np.ndarray:
    """(V + 1) x (sum of the widths x F): row t holds token t's row of every width's
    offset-j table (:class:`~.folded.FoldedTextCNN`), width by width, offset by offset, so
    that a window's rows come from few places in memory; row V is the zero row (a position
    outside the text). One matrix product, straight into that layout."""
    convs = [branch.conv.conv for branch in model.ngrams.values()]
    with torch.no_grad():
        weights = torch.cat([c.weight[:, :, j] for c in convs for j in range(c.kernel_size[0])])
        embeddings = channel_sum(model).float()
        table = torch.zeros(len(embeddings) + 1, len(weights))
        torch.matmul(embeddings, weights.float().T, out=table[:-1])
    if not all_finite(table):
        raise ValueError(
            "the weights are too large for n-gram tables (they overflow float32): the model "
            "was damaged, or use inference='conv'"
        )
    return table.numpy()


class CompiledTextCNN:
    """A trained :class:`~.textcnn.TextCNN`, folded, as flat arrays for the compiled forward
    pass: probabilities of a batch given as flat token ids and offsets, calibrated by
    ``temperature``, a softmax or (``sigmoid``) one sigmoid per label."""

    def __init__(self, model: TextCNN, sigmoid: bool) -> None:
        cfg = model.config
        self.widths = np.array(cfg.kernel_sizes, dtype=np.int64)
        self.bases = np.zeros(len(self.widths), dtype=np.int64)  # a width's first offset
        self.bases[1:] = np.cumsum(cfg.kernel_sizes)[:-1]
        self.table = token_major_table(model)
        self.bias = filter_biases(model).float().numpy()
        classifier = model.classifier
        self.vocab_size, self.wide = cfg.vocab_size, cfg.wide
        self.weight = np.ascontiguousarray(classifier.weight.detach().float().numpy())
        self.head_bias = classifier.bias.detach().float().numpy()
        channel = model.naive_bayes
        self.ngram_weight = cfg.ngram_weight if channel is not None else 0.0
        if channel is not None:
            self.ngram_table = channel.log_likelihood.detach().float().numpy()
            self.prior = channel.log_prior.detach().float().numpy()
            self.buckets = channel.buckets
        else:
            self.ngram_table = np.zeros((1, len(self.head_bias)), dtype=np.float32)
            self.prior = np.zeros(len(self.head_bias), dtype=np.float32)
            self.buckets = 1
        self.sigmoid = sigmoid
        self.classes = len(self.head_bias)
        self.features = len(self.bias)

    def __call__(
        self, ids: np.ndarray, offsets: np.ndarray, temperature: float = 1.0, windows: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(N x classes probabilities, and with ``windows`` the winning window of every
        filter N x features, the pooled features N x features) of the texts
        ``ids[offsets[t]:offsets[t + 1]]``."""
        texts = len(offsets) - 1
        out = np.empty((texts, self.classes), dtype=np.float32)
        pooled = np.empty((texts, self.features), dtype=np.float32)
        positions = np.zeros((texts if windows else 0, self.features), dtype=np.int64)
        forward = _parallel if texts >= PARALLEL_FROM else _serial
        forward(
            ids, offsets, self.table, self.bases, self.widths, self.vocab_size, self.wide,
            self.bias, self.weight, self.head_bias, self.ngram_table, self.prior,
            np.float32(self.ngram_weight), self.buckets, np.float32(temperature),
            self.sigmoid, out, positions, pooled,
        )  # fmt: skip
        return out, positions if windows else None, pooled

    def ngram_evidence(self, ids: np.ndarray, offsets: np.ndarray):
        """As :meth:`~.folded.FoldedTextCNN.ngram_evidence`, text by text: contributions
        N x classes x features, first and last token of each filter's winning window."""
        _, positions, pooled = self(ids, offsets, windows=True)
        lengths = np.diff(offsets)
        widths = np.repeat(self.widths, self.features // len(self.widths))
        first = positions - (widths - 1) if self.wide else positions
        top = np.maximum(lengths[:, None] - 1, 0)
        last = np.minimum(first + widths - 1, top)
        contributions = pooled[:, None, :] * self.weight[None]
        return (
            torch.from_numpy(contributions),
            torch.from_numpy(np.maximum(first, 0)),
            torch.from_numpy(last),
        )
