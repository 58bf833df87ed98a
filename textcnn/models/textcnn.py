"""Kim (2014): a convolutional network for sentence classification."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch import nn

from ..layers import ConvBlock, GlobalPool, Parallel, max_over_time
from .base import Classifier
from .naive_bayes import NaiveBayesChannel
from .registry import register_model

EmbeddingMode = Literal["rand", "static", "non-static", "multichannel"]
EMBEDDING_MODES = ("rand", "static", "non-static", "multichannel")


MAX_NGRAM_WEIGHT = 1e4  # far above any weight stacking picks; a card past it was tampered with


def _derived(source: str, default):
    """A setting training takes from ``source``, never from the user (see textcnn.typed)."""
    return field(default=default, metadata={"derived": source})


@dataclass
class TextCNNConfig:
    vocab_size: int = _derived("the tokenizer", 20_000)  # embedding rows, [PAD] and [UNK] too
    embed_dim: int = 300  # word vector size (Kim: 300, word2vec)
    num_classes: int = _derived("the labels", 2)
    kernel_sizes: tuple[int, ...] = (3, 4, 5)  # n-gram widths, one conv per width
    num_filters: int = 100  # feature maps per width
    dropout: float = 0.5  # on the pooled features, before the classifier
    embedding_mode: EmbeddingMode = "rand"  # rand | static | non-static | multichannel
    padding_idx: int = _derived("the tokenizer", 0)  # a zero vector that never wins the max
    # Kim's "wide" convolution: k-1 zero vectors on both sides, so the n-grams at the
    # edges of a text count too; False: only the windows wholly inside the text
    wide: bool = True
    # The n-gram channel (naive Bayes over uni- and bigrams, see naive_bayes.py): rows for
    # hashed bigrams, 0 for no channel; its logits join the CNN's times ngram_weight, which
    # training picks on the dev split (0: the channel did not help there).
    ngram_buckets: int = 0
    ngram_weight: float = _derived("the dev split", 0.0)
    # the most the channel's table may take while it is counted (megabytes): with many
    # classes training uses fewer bigram rows (or no channel) and says so
    ngram_max_mb: int = 2048

    def __post_init__(self) -> None:
        # the card is read from JSON: 300.0 or "300" or true is not a size
        if not isinstance(self.kernel_sizes, list | tuple) or not all(
            _is_int(k) for k in self.kernel_sizes
        ):
            raise ValueError(f"kernel_sizes must be a list of integers, got {self.kernel_sizes!r}")
        self.kernel_sizes = tuple(self.kernel_sizes)
        names = ("vocab_size", "embed_dim", "num_classes", "num_filters", "padding_idx")
        for name in (*names, "ngram_buckets"):
            if not _is_int(getattr(self, name)):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("dropout", "ngram_weight"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if self.ngram_buckets < 0 or self.ngram_max_mb < 1:
            raise ValueError("ngram_buckets must not be negative, ngram_max_mb at least 1")
        if not 0 <= self.ngram_weight <= MAX_NGRAM_WEIGHT:  # NaN fails this too
            raise ValueError(
                f"ngram_weight must be from 0 to {MAX_NGRAM_WEIGHT:g}, got {self.ngram_weight}"
            )
        if not isinstance(self.wide, bool):
            raise ValueError(f"wide must be true or false, got {self.wide!r}")
        if self.embedding_mode not in EMBEDDING_MODES:
            raise ValueError(
                f"embedding_mode must be one of {EMBEDDING_MODES}, got {self.embedding_mode!r}"
            )
        if not self.kernel_sizes or min(self.kernel_sizes) < 1:
            raise ValueError(f"kernel_sizes must be positive widths, got {self.kernel_sizes}")
        for name in ("vocab_size", "embed_dim", "num_classes", "num_filters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.padding_idx < self.vocab_size:
            raise ValueError(
                f"padding_idx must be a token id below vocab_size, got {self.padding_idx}"
            )

    def to_dict(self) -> dict:
        return {**asdict(self), "kernel_sizes": list(self.kernel_sizes)}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def valid_windows(lengths: torch.Tensor, width: int, wide: bool) -> torch.Tensor:
    """The windows of ``width`` that hold a real token, per text of ``lengths`` tokens:
    wide, window j covers tokens j - width + 1 .. j (edges included); narrow, the windows
    wholly inside the text, and a text shorter than ``width`` keeps one."""
    if wide:
        return lengths + width - 1
    return (lengths - width + 1).clamp(min=1)


def real_tokens(
    token_ids: torch.Tensor, config: TextCNNConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, lengths): ``token_ids`` N x L padded at the end, and, narrow, widened with
    padding to the largest width, so that every width has a window to pool."""
    lengths = (token_ids != config.padding_idx).sum(dim=1)  # N
    shortfall = max(config.kernel_sizes) - token_ids.shape[1]
    if shortfall > 0 and not config.wide:
        token_ids = nn.functional.pad(token_ids, (0, shortfall), value=config.padding_idx)
    return token_ids, lengths


class NGramFeatures(nn.Module):
    """One n-gram width: Conv1d → ReLU → max over the windows that contain real tokens.

    Windows made only of padding are masked, so a prediction never depends on
    how much padding its batch needed.
    """

    def __init__(self, embed_dim: int, num_filters: int, width: int, wide: bool) -> None:
        super().__init__()
        self.width = width
        self.wide = wide
        self.conv = ConvBlock(1, embed_dim, num_filters, width, padding=width - 1 if wide else 0)
        self.pool = GlobalPool("max")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        windows = self.conv(x)  # N x F x (L + width - 1) if wide, else (L - width + 1)
        return self.pool(windows, valid_windows(lengths, self.width, self.wide))  # N x F

    def winning_tokens(self, x: torch.Tensor, lengths: torch.Tensor):
        """Pooled features (N x F) and the first and last token of each winning window."""
        windows = self.conv(x)
        valid = valid_windows(lengths, self.width, self.wide)
        values, positions = max_over_time(windows, valid, True)
        first = positions - self.width + 1 if self.wide else positions  # N x F
        last = first + self.width - 1
        top = (lengths[:, None] - 1).clamp(min=0)
        return values, first.clamp(min=0), torch.minimum(last, top)


class TextCNN(Classifier):
    """Kim (2014) CNN: embedding, parallel n-gram convolutions, max over time, dropout, linear."""

    global_pool = "max"

    def __init__(self, config: TextCNNConfig, embeddings: torch.Tensor | None = None) -> None:
        super().__init__(config.num_classes)
        self.config = config
        self.embedding = self._embedding(embeddings, trainable=config.embedding_mode != "static")
        # multichannel: a frozen copy beside the tuned one. Kim applies each filter
        # to both channels and adds the results; convolution is linear, so that is
        # the same filter applied once to the sum of the two channels.
        self.static_embedding = (
            self._embedding(self.embedding.weight.detach(), trainable=False)
            if config.embedding_mode == "multichannel"
            else None
        )
        self.ngrams = Parallel(
            {
                f"width{k}": NGramFeatures(config.embed_dim, config.num_filters, k, config.wide)
                for k in config.kernel_sizes
            }
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(
            config.num_filters * len(config.kernel_sizes), config.num_classes
        )
        self.naive_bayes = (
            NaiveBayesChannel(
                config.vocab_size, config.ngram_buckets, config.num_classes, config.padding_idx
            )
            if config.ngram_buckets
            else None
        )

    def _embedding(self, weights: torch.Tensor | None, trainable: bool) -> nn.Embedding:
        cfg = self.config
        embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.padding_idx)
        with torch.no_grad():
            if weights is None:
                embedding.weight.uniform_(-0.25, 0.25)  # Kim's range for random vectors
            else:
                if tuple(weights.shape) != (cfg.vocab_size, cfg.embed_dim):
                    raise ValueError(
                        f"embedding matrix has shape {tuple(weights.shape)}, "
                        f"expected (vocab_size, embed_dim) = ({cfg.vocab_size}, {cfg.embed_dim})"
                    )
                embedding.weight.copy_(weights)
            embedding.weight[cfg.padding_idx].zero_()
        embedding.weight.requires_grad_(trainable)
        return embedding

    def _embed(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N x E x L embeddings and the N text lengths; token_ids is N x L, padded at the end."""
        token_ids, lengths = real_tokens(token_ids, self.config)
        x = self.embedding(token_ids)  # N x L x E
        if self.static_embedding is not None:
            x = x + self.static_embedding(token_ids)
        return x.transpose(1, 2), lengths  # N x E x L

    def forward_features(self, token_ids: torch.Tensor) -> torch.Tensor:
        x, lengths = self._embed(token_ids)
        return self.ngrams(x, lengths)  # N x (F * widths)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))  # N x num_classes

    def get_classifier(self) -> nn.Linear:
        return self.classifier

    def forward(self, token_ids: torch.Tensor, return_aux: bool = False):
        logits = self.with_ngrams(self.forward_head(self.forward_features(token_ids)), token_ids)
        return (logits, []) if return_aux else logits

    def with_ngrams(self, logits: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """``logits`` plus the n-gram channel's, times its weight (when there is one)."""
        weight = self.config.ngram_weight
        if self.naive_bayes is None or not weight:
            return logits
        return logits + weight * self.naive_bayes(token_ids).to(logits.dtype)

    @torch.no_grad()
    def ngram_evidence(self, token_ids: torch.Tensor):
        """What drove each decision: for every filter, its pooled value, its weight in each
        class's logit, and the token range of the window that won its max-pooling.

        Returns ``(contributions N x classes x F', first N x F', last N x F')`` where F'
        is all filters of all widths and contribution = classifier weight x pooled value
        (the text analogue of a class activation map: the logit is their sum plus bias).
        """
        x, lengths = self._embed(token_ids)
        parts = [branch.winning_tokens(x, lengths) for branch in self.ngrams.values()]
        values = torch.cat([p[0] for p in parts], dim=1)  # N x F'
        first = torch.cat([p[1] for p in parts], dim=1)
        last = torch.cat([p[2] for p in parts], dim=1)
        contributions = values[:, None, :] * self.classifier.weight[None]  # N x C x F'
        return contributions, first, last


@register_model(
    "textcnn",
    kind="text",
    input_shape=(64,),
    small_input_shape=(7,),
    small_config={"vocab_size": 50, "embed_dim": 16, "num_filters": 4, "num_classes": 3},
)
def textcnn(embeddings: torch.Tensor | None = None, **config) -> TextCNN:
    """Kim (2014) sentence CNN: widths 3/4/5, 100 maps each, max over time, dropout 0.5."""
    return TextCNN(TextCNNConfig(**config), embeddings)
