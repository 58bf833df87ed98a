"""Inference with Kim's CNN folded into n-gram tables: no multiply by the embeddings at all.

The first layer is linear in the embeddings. The convolution of width k at window p is

    y_p = b + sum_j W_j · e(x_{p-P+j}),   j = 0 .. k-1  (P = k-1 wide, 0 narrow)

so precomputing, once, the table T_j = E · W_jᵀ (vocabulary x filters) for every width and
offset turns a window into k row lookups and a sum, which one ``embedding_bag`` call does
for all windows of a width without materialising the k terms. ReLU, max over the valid
windows and the linear layer follow as in :class:`~textcnn.models.textcnn.TextCNN`, whose
results this reproduces to float rounding (``tests/models/test_folded.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..artifacts import all_finite
from .textcnn import TextCNN, TextCNNConfig, real_tokens, valid_windows

ROWWISE_ELEMENTS = 1 << 22  # products held at once by rowwise_linear (16 MB of floats)


def rowwise_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias`` as one dot product per row, summed in the same order whatever
    the batch: a matrix multiply picks its blocking by the batch's size, which moved scores
    by up to 4e-6 with the texts a text was batched with. Cut into row chunks, so that the
    products never exceed :data:`ROWWISE_ELEMENTS` however many classes there are."""
    rows = max(1, ROWWISE_ELEMENTS // max(1, weight.numel()))
    out = [(part[:, None, :] * weight).sum(-1) + bias for part in x.split(rows)]
    return torch.cat(out) if out else x.new_empty(0, weight.shape[0])


def table_bytes(cfg: TextCNNConfig, dtype: torch.dtype = torch.float32) -> int:
    """Memory the folded tables of a model of ``cfg`` take: vocabulary x sum(widths) x filters."""
    rows = sum(k * (cfg.vocab_size + 1) + 1 for k in cfg.kernel_sizes)
    return rows * cfg.num_filters * torch.empty(0, dtype=dtype).element_size()


def channel_sum(model: TextCNN) -> torch.Tensor:
    """V x E: the embeddings the convolutions see, the two channels added for multichannel
    (each filter applies to both; the convolution is linear)."""
    embeddings = model.embedding.weight.detach()
    if model.static_embedding is not None:
        embeddings = embeddings + model.static_embedding.weight.detach()
    return embeddings


def filter_biases(model: TextCNN) -> torch.Tensor:
    """Every filter's bias, width by width (zeros for a convolution without one)."""
    convs = [branch.conv.conv for branch in model.ngrams.values()]
    biases = [c.bias if c.bias is not None else c.weight.new_zeros(len(c.weight)) for c in convs]
    return torch.cat(biases).detach().clone()


class FoldedTextCNN(nn.Module):
    """A trained :class:`TextCNN` for inference only: same logits, same winning windows."""

    def __init__(self, model: TextCNN, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        cfg = model.config
        self.config = cfg
        self.classifier = model.classifier  # shared: the head is unchanged
        self.with_ngrams = model.with_ngrams  # and the n-gram channel
        with torch.no_grad():
            embeddings = channel_sum(model)  # V x E
            tables = []
            zeros = torch.zeros(1, cfg.num_filters, device=embeddings.device)
            for branch in model.ngrams.values():
                conv = branch.conv.conv
                weight = conv.weight  # F x E x k
                # Offset j's block: rows j*(V+1) .. j*(V+1)+V-1, then a zero row (a position
                # outside the text: token id V lands on it in every block). Last, one -inf row
                # (a window past the text's valid ones: it never wins the max).
                blocks = []
                for j in range(branch.width):
                    blocks += [embeddings @ weight[:, :, j].T, zeros]
                table = torch.cat(blocks).to(dtype)
                if not all_finite(table):  # float16 tables overflow first
                    raise ValueError(
                        "the weights are too large for n-gram tables (they overflow "
                        f"{dtype}): the model was damaged, or use inference='conv'"
                    )
                blocks = [table, torch.full_like(zeros, float("-inf")).to(dtype)]
                tables.append(torch.cat(blocks).contiguous())
        self.tables = nn.ParameterList(nn.Parameter(t, requires_grad=False) for t in tables)
        # a constant per filter: max(window + b) = max(window) + b, so it is added after pooling
        self.register_buffer("bias", filter_biases(model))

    def _windows(self, token_ids: torch.Tensor, lengths: torch.Tensor, k: int, table):
        """N x windows x F: every window of width ``k`` before bias and ReLU; windows past
        the text's valid ones are -inf."""
        cfg = self.config
        outside = cfg.vocab_size  # the zero row of every block
        pad = k - 1 if cfg.wide else 0
        padded = F.pad(token_ids, (pad, pad), value=outside) if pad else token_ids
        offsets = (outside + 1) * torch.arange(k, device=token_ids.device)
        rows = padded.unfold(1, k, 1) + offsets  # N x windows x k, one pass
        windows = rows.shape[1]
        valid = valid_windows(lengths, k, cfg.wide)
        past = torch.arange(windows, device=token_ids.device)[None, :] >= valid[:, None]
        rows[..., 0].masked_fill_(past, table.shape[0] - 1)  # the -inf row
        values = F.embedding_bag(rows.view(-1, k), table, mode="sum")  # N*windows x F
        return values.view(len(token_ids), windows, -1)

    def forward_features(self, token_ids: torch.Tensor) -> torch.Tensor:
        token_ids, lengths = real_tokens(token_ids, self.config)
        pooled = [
            self._windows(token_ids, lengths, k, table).amax(dim=1)  # N x F
            for k, table in zip(self.config.kernel_sizes, self.tables, strict=True)
        ]
        # ReLU after the max: the same, as ReLU is monotone, on N x F instead of every window
        features = (torch.cat(pooled, dim=1).to(self.bias.dtype) + self.bias).relu_()
        return features  # N x (F * widths)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """N x num_classes logits; a text's do not depend on the texts batched with it."""
        features = self.forward_features(token_ids)
        logits = rowwise_linear(features, self.classifier.weight, self.classifier.bias)
        return self.with_ngrams(logits, token_ids)

    @torch.no_grad()
    def ngram_evidence(self, token_ids: torch.Tensor):
        """As :meth:`TextCNN.ngram_evidence`: contributions N x C x F', first and last token
        of each filter's winning window N x F'."""
        token_ids, lengths = real_tokens(token_ids, self.config)
        values, firsts, lasts = [], [], []
        top = (lengths[:, None] - 1).clamp(min=0)
        for k, table in zip(self.config.kernel_sizes, self.tables, strict=True):
            best, positions = self._windows(token_ids, lengths, k, table).max(dim=1)  # N x F
            # the winning window is the same before and after ReLU whenever it counts (> 0)
            first = positions - k + 1 if self.config.wide else positions
            values.append(best)
            firsts.append(first.clamp(min=0))
            lasts.append(torch.minimum(first + k - 1, top))
        pooled = (torch.cat(values, dim=1).to(self.bias.dtype) + self.bias).relu_()
        contributions = pooled[:, None, :] * self.classifier.weight[None]  # N x C x F'
        return contributions, torch.cat(firsts, dim=1), torch.cat(lasts, dim=1)
