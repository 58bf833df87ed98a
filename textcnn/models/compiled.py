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
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

from .folded import channel_sum, filter_biases
from .naive_bayes import BIGRAM_HASH
from .textcnn import TextCNN

PARALLEL_FROM = 64  # texts in a batch from which the threads share it


@njit(cache=True, inline="always")
def _one_text(
    ids, start, end, table, bases, widths, vocab_size, wide, bias, weight, head_bias,
    ngram_table, prior, ngram_weight, buckets, temperature, sigmoid, out, positions, text,
    features, grams, value,
):  # fmt: skip
    length = end - start
    filters = len(bias) // len(widths)
    outside = vocab_size  # the zero row
    done = 0
    for w in range(len(widths)):
        k = widths[w]
        base = bases[w]
        windows = length + k - 1 if wide else max(length - k + 1, 1)
        best = features[done : done + filters]
        best[:] = -np.inf
        track = positions.shape[0] > 0
        for p in range(windows):
            for f in range(filters):
                value[f] = 0.0
            for j in range(k):
                position = p - (k - 1) + j if wide else p + j
                inside = 0 <= position < length
                token = ids[start + position] if inside else (outside if wide else 0)
                at = (base + j) * filters  # a token's rows lie together: one fetch
                line = table[token, at : at + filters]
                for f in range(filters):  # contiguous: vectorised
                    value[f] += line[f]
            if track:
                for f in range(filters):
                    if value[f] > best[f]:
                        best[f] = value[f]
                        positions[text, done + f] = p
            else:
                for f in range(filters):
                    best[f] = max(best[f], value[f])
        done += filters
    classes = weight.shape[0]
    for f in range(done):
        features[f] = max(features[f] + bias[f], np.float32(0.0))
    logits = np.empty(classes, dtype=np.float32)
    for c in range(classes):
        total = head_bias[c]
        for f in range(done):
            total += weight[c, f] * features[f]
        logits[c] = total
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
        kept = np.sort(grams[:count])
        for c in range(classes):  # in PyTorch's order: the n-grams, then the prior
            total = np.float32(0.0)
            for i in range(count):
                if i == 0 or kept[i] != kept[i - 1]:
                    total += ngram_table[kept[i], c]
            logits[c] += ngram_weight * (total + prior[c])
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
        longest = 0
        for t in range(len(offsets) - 1):
            longest = max(longest, offsets[t + 1] - offsets[t])
        for t in loop(len(offsets) - 1):
            grams = np.empty(2 * longest + 1, dtype=np.int64)
            value = np.empty(len(bias) // len(widths), dtype=np.float32)
            _one_text(
                ids, offsets[t], offsets[t + 1], table, bases, widths, vocab_size, wide,
                bias, weight, head_bias, ngram_table, prior, ngram_weight, buckets,
                temperature, sigmoid, out, positions, t, pooled[t], grams, value,
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
    if not table.isfinite().all():
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
