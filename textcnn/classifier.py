"""A trained text classifier: tokenizer + network + labels, with a batched ``predict``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from .artifacts import checked_labels, load_weights, read_model_config
from .models import TextCNN, TextCNNConfig
from .text.tokenizer import PAD_ID, check_tokenizer, clean_text, encode_batch, load_tokenizer

TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float


@dataclass(frozen=True)
class Evidence:
    """A span of the original text that won max-pooling for filters voting for the label."""

    text: str
    start: int  # character offsets into the original text
    end: int
    weight: float  # summed contribution to the predicted class's logit


@dataclass(frozen=True)
class Result:
    predictions: list[Prediction]  # most probable first
    truncated: bool  # the text was longer than the model's maximum length
    evidence: list[Evidence] | None = None  # with explain=True


def pad_batch(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
    """N x L token ids, padded at the end with PAD_ID to the longest (at least 1)."""
    width = max(1, *(len(s) for s in sequences)) if sequences else 1
    batch = torch.full((len(sequences), width), PAD_ID, dtype=torch.long)
    for row, ids in enumerate(sequences):
        batch[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
    return batch


class TextClassifier:
    """Predicts labels for texts; built by :func:`load` from a model directory."""

    def __init__(
        self, model: TextCNN, tokenizer: Tokenizer, labels: list[str], config: dict | None = None
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.config = config or {}

    @property
    def max_length(self) -> int:
        truncation = self.tokenizer.truncation
        return truncation["max_length"] if truncation else 0

    def _check(self, texts) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single text as [text]")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("every text must be a string")
        return [clean_text(t) for t in texts]

    def _ids(self, encodings) -> torch.Tensor:
        device = next(self.model.parameters()).device
        return pad_batch([e.ids for e in encodings]).to(device)

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """N x num_classes class probabilities."""
        texts = self._check(texts)
        out = []
        for start in range(0, len(texts), batch_size):
            ids = self._ids(encode_batch(self.tokenizer, texts[start : start + batch_size]))
            out.append(torch.softmax(self.model(ids).float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.empty(0, len(self.labels))

    def predict(
        self, texts: Sequence[str], top_k: int | None = 1, batch_size: int = 256
    ) -> list[list[Prediction]]:
        """For every text, its ``top_k`` labels (all when None), most probable first."""
        return [r.predictions for r in self.classify(texts, top_k, batch_size=batch_size)]

    @torch.inference_mode()
    def classify(
        self,
        texts: Sequence[str],
        top_k: int | None = 1,
        explain: bool = False,
        batch_size: int = 256,
        evidence_spans: int = 5,
    ) -> list[Result]:
        """Predictions, truncation flags and (with ``explain``) the n-grams behind each decision."""
        texts = self._check(texts)
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1 or None, got {top_k}")
        k = len(self.labels) if top_k is None else min(top_k, len(self.labels))
        results: list[Result] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            encodings = encode_batch(self.tokenizer, chunk)
            ids = self._ids(encodings)
            probs = torch.softmax(self.model(ids).float(), dim=-1).cpu()
            scores, indices = probs.topk(k, dim=-1)
            evidence = self._evidence(chunk, encodings, ids, evidence_spans) if explain else None
            for row, encoding in enumerate(encodings):
                predictions = [
                    Prediction(self.labels[i], float(p))
                    for p, i in zip(scores[row].tolist(), indices[row].tolist(), strict=True)
                ]
                truncated = bool(encoding.overflowing)
                results.append(Result(predictions, truncated, evidence[row] if evidence else None))
        return results

    def _evidence(self, texts, encodings, ids, spans: int) -> list[list[Evidence]]:
        """For the predicted class, the windows that won max-pooling in the filters that
        add most to its logit, as character spans of the original texts."""
        contributions, first, last = self.model.ngram_evidence(ids)  # N x C x F, N x F, N x F
        logits = contributions.sum(-1) + self.model.classifier.bias
        out = []
        for row, (text, encoding) in enumerate(zip(texts, encodings, strict=True)):
            if not encoding.ids:
                out.append([])
                continue
            votes = contributions[row, logits[row].argmax()]  # F
            merged: dict[tuple[int, int], float] = {}
            for f in votes.argsort(descending=True)[: 4 * spans].tolist():
                if votes[f] <= 0:
                    break
                begin = encoding.offsets[first[row, f]][0]
                end = encoding.offsets[last[row, f]][1]
                merged[(begin, end)] = merged.get((begin, end), 0.0) + float(votes[f])
            best = sorted(merged.items(), key=lambda item: -item[1])[:spans]
            out.append([Evidence(text[b:e], b, e, round(w, 4)) for (b, e), w in best])
        return out

    def label_ids(self, labels: Sequence[str], source: str = "the data") -> torch.Tensor:
        """Class indices of ``labels``; a label the model does not know is a ``ValueError``."""
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(
                f"{source} has labels the model was not trained on: {', '.join(unknown[:10])}; "
                f"the model knows {', '.join(self.labels)}"
            )
        return torch.tensor([index[label] for label in labels], dtype=torch.long)


def load(path: str | Path, device: str | torch.device = "cpu"):
    """Load a model directory written by ``textcnn train``: a :class:`TextClassifier`, or an
    ``ImageClassifier`` for an image model. Never unpickles anything."""
    path = Path(path)
    config = read_model_config(path)
    if config.get("task") == "image":
        from .images.classifier import load_image_classifier

        classifier = load_image_classifier(path, config)
        classifier.model.to(device)
        return classifier
    if config.get("task") != "text" or config.get("architecture") != "textcnn":
        raise ValueError(
            f"{path}: a {config.get('task')!r}/{config.get('architecture')!r} model, "
            "not a text classifier"
        )
    try:
        model_config = TextCNNConfig(**config["model"])
        labels = checked_labels(config["labels"], model_config.num_classes, path)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}/config.json: incomplete or damaged ({error})") from None
    model = load_weights(lambda: TextCNN(model_config), path, lazy=True)
    tokenizer = load_tokenizer(path / TOKENIZER_FILE)
    check_tokenizer(tokenizer, model_config.vocab_size, path)
    return TextClassifier(model.to(device), tokenizer, labels, config)
