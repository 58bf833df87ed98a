"""The n-gram channel: multinomial naive Bayes over a text's uni- and bigrams (Wang & Manning
2012, "Baselines and bigrams": MNB with bigrams scores 79.0 on MR and 93.6 on Subj), whose
log-likelihoods :class:`~textcnn.models.textcnn.TextCNN` adds to its logits with a weight
chosen on the dev split.

Features are binarized (an n-gram counts once per text, as Wang & Manning found best).
Unigrams are the token ids themselves; a bigram is hashed into one of ``buckets`` rows after
the vocabulary's. Counting is closed-form: no training loop, a pass over the training texts.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

BIGRAM_HASH = 1_000_003  # a prime above any vocabulary: (a * it + b) differs for every pair


class NaiveBayesChannel(nn.Module):
    """Per class, the sum of log P(n-gram | class) over a text's distinct n-grams, plus the
    log prior; n-grams never seen in training add nothing."""

    def __init__(self, vocab_size: int, buckets: int, num_classes: int, padding_idx: int) -> None:
        super().__init__()
        self.vocab_size, self.buckets, self.padding_idx = vocab_size, buckets, padding_idx
        self.register_buffer("log_likelihood", torch.zeros(vocab_size + buckets, num_classes))
        self.register_buffer("log_prior", torch.zeros(num_classes))

    def ngrams(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, present): each text's uni- and bigram rows, N x (2L - 1), sorted with the
        text's own n-grams first, and which of them count (not padding, not a repeat of one
        already counted). A text's n-grams sit at the same places whatever padding its
        batch needs, so its score does not depend on its batch-mates."""
        ids = token_ids.long()
        real = ids != self.padding_idx
        bigrams = self.vocab_size + (ids[:, :-1] * BIGRAM_HASH + ids[:, 1:]) % self.buckets
        rows = torch.cat([ids, bigrams], dim=1)
        valid = torch.cat([real, real[:, :-1] & real[:, 1:]], dim=1)
        past = self.vocab_size + self.buckets  # sorts after every real row
        rows, _ = torch.where(valid, rows, past).sort(dim=1)
        present = rows < past
        present[:, 1:] &= rows[:, 1:] != rows[:, :-1]
        return torch.where(present, rows, self.padding_idx), present

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """N x classes: log prior plus the log-likelihood of every distinct n-gram, summed
        row by row in order (no N x n-grams x classes tensor, however many classes)."""
        rows, present = self.ngrams(token_ids)
        table = self.log_likelihood
        weights = present.to(table.dtype)
        scores = F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")
        return scores + self.log_prior

    @torch.no_grad()
    def fit(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], alpha: float = 1.0):
        """Count (padded token ids, targets) batches; Laplace smoothing ``alpha`` over the
        n-grams seen. Targets are class indices (one label per text: a log-likelihood per
        class), or N x labels 0/1 (several: per label the log-likelihood ratio of the texts
        with the label against those without, and the log prior odds). Returns self."""
        counts = torch.zeros_like(self.log_likelihood)  # n-gram x class: texts with both
        grams = torch.zeros(len(counts))  # n-gram: texts with it
        classes = torch.zeros_like(self.log_prior)
        texts = 0
        width = counts.shape[1]
        for token_ids, targets in batches:
            rows, present = self.ngrams(token_ids)
            grams.index_put_((rows[present],), torch.ones(int(present.sum())), accumulate=True)
            texts += len(targets)
            if targets.dim() == 1:  # class indices
                cells = (rows * width + targets[:, None])[present]
                counts.view(-1).index_put_((cells,), torch.ones(len(cells)), accumulate=True)
                classes += torch.bincount(targets, minlength=width).to(classes.dtype)
            else:  # labels x 0/1: each n-gram of a text counts for each of its labels
                counts.index_add_(0, rows[present], targets.float()[present.nonzero()[:, 0]])
                classes += targets.float().sum(0)
        seen = grams > 0

        def log_likelihood(counts: torch.Tensor) -> torch.Tensor:
            smoothed = (counts + alpha) * seen[:, None]
            return torch.where(seen[:, None], (smoothed / smoothed.sum(0)).log(), 0.0)

        if targets.dim() == 1:
            self.log_likelihood.copy_(log_likelihood(counts))
            self.log_prior.copy_((classes + alpha).log() - (classes + alpha).sum().log())
        else:
            with_label = log_likelihood(counts)
            self.log_likelihood.copy_(with_label - log_likelihood(grams[:, None] - counts))
            self.log_prior.copy_((classes + alpha).log() - (texts - classes + alpha).log())
        return self
