"""Model directories and checkpoints as plain data: JSON and safetensors, written atomically.

A model directory holds ``config.json`` (format version, architecture,
hyper-parameters, labels, ...), ``model.safetensors`` and task files such as
``tokenizer.json``. Nothing is ever pickled or unpickled. Every file of a model directory is
read or served through :func:`model_file`: a plain file inside the directory, of a bounded
size, never a link that leaves it or a pipe that would block the reader.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save_file
from torch import nn

# The files of a model directory, by name (the only place they are spelled).
CONFIG_FILE = "config.json"  # the model card
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"  # text models
METRICS_FILE = "metrics.json"  # the evaluation reports
CONFUSION_FILE = "confusion.png"  # the confusion matrix picture
LABEL_F1_FILE = "label_f1.png"  # a multi-label model's per-label F1, in its place
RELIABILITY_FILE = "reliability.png"  # the reliability diagram (calibration)
ONNX_CARD = "onnx.json"  # beside an exported ONNX file: what it takes and gives
# The largest file of each kind a loader reads (a card or tokenizer past these is not one).
MAX_BYTES = {
    CONFIG_FILE: 16 << 20,
    TOKENIZER_FILE: 256 << 20,
    METRICS_FILE: 64 << 20,
    ONNX_CARD: 16 << 20,
}


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it is renamed onto
    ``path``, so a reader never sees half a file (and a failed write leaves none)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; results are meant to be read
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    """Write JSON atomically (:func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict:
    try:
        with Path(path).open(encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: damaged JSON ({error})") from None
    except RecursionError:
        raise ValueError(f"{path}: damaged JSON (nested too deep)") from None


def model_file(model_dir: Path, name: str) -> Path:
    """``model_dir/name`` once it is known to be a plain file inside ``model_dir`` (a link
    may point within the directory, never out of it) and within :data:`MAX_BYTES`: else a
    ``ValueError`` that says what is wrong. A pipe or a device in its place is refused
    without being opened, since reading one could wait for ever."""
    model_dir = Path(model_dir)
    path = model_dir / name
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; the model directory is incomplete") from None
    if stat.S_ISLNK(info.st_mode):
        target = path.resolve()
        if not target.is_relative_to(model_dir.resolve()):
            raise ValueError(
                f"{path}: a link out of the model directory; a model directory must hold "
                "its own files: copy the file in place of the link"
            )
        info = target.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: not a regular file; the model directory was tampered with")
    limit = MAX_BYTES.get(name)
    if limit is not None and info.st_size > limit:
        raise ValueError(
            f"{path}: {info.st_size:,} bytes, over the {limit:,} a {name} can be; "
            "the model directory was damaged or tampered with"
        )
    return path


def _old(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def recover_directory(final: Path) -> None:
    """Undo what an interrupted :func:`atomic_directory` left beside ``final``: the previous
    version renamed aside comes back when ``final`` is missing, and half-written temporary
    folders go."""
    final = Path(final)
    old = _old(final)
    if old.is_dir():
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, final)
    for stale in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it replaces ``final``.

    An interrupted write leaves ``final`` as it was (or absent), never half written. An
    existing ``final`` is renamed aside, the new one renamed in, the old one removed: a
    failure between the renames puts the old one back, and a kill there is undone by
    :func:`recover_directory` on the next write (or by renaming ``.NAME.old`` back by hand).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(final)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model directory is meant to be shared
    try:
        yield tmp
        if final.exists():
            old = _old(final)
            os.replace(final, old)
            try:
                os.replace(tmp, final)
            except BaseException:
                os.replace(old, final)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors file of contiguous CPU copies (frozen and shared tensors included),
    readable by all like the other files (safetensors writes it private)."""
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, str(path))
    os.chmod(path, 0o644)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_tensors(path: Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (or of its bytes, ``data``) on the CPU; a damaged file
    is a ``ValueError``."""
    path = Path(path)
    if data is None and not path.is_file():
        raise ValueError(f"{path}: missing; the model directory is incomplete")
    try:
        return load_file(str(path), device="cpu") if data is None else load(data)
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(
            f"{path}: damaged weights file ({error}); copy the model directory again or retrain"
        ) from None


def check_model_dir(model_dir: Path) -> Path:
    """``model_dir`` if it is a directory; else a message that says what to do."""
    if not model_dir.is_dir():
        if _old(model_dir).is_dir():
            raise ValueError(
                f"{model_dir}: missing, but an interrupted write left the previous version in "
                f"{_old(model_dir)}; rename it back to {model_dir.name} (the next write does)"
            )
        raise ValueError(f"{model_dir}: not a model directory (train one with `textcnn train`)")
    return model_dir


@contextlib.contextmanager
def _initialisers_skipped() -> Iterator[None]:
    """``torch.nn.init``'s initialisers as no-ops on meta tensors, for a model built on the
    meta device: there is nothing to fill, and the first random fill of a meta tensor
    imports ``torch._dynamo``, 1.6 s of every load. A real tensor (another thread's model,
    built meanwhile) is still initialised."""
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {name: getattr(nn.init, name) for name in names}

    def skipped(original):
        def initialise(tensor, *args, **kwargs):
            return tensor if tensor.is_meta else original(tensor, *args, **kwargs)

        return initialise

    for name in names:
        setattr(nn.init, name, skipped(saved[name]))
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether every value of a floating-point tensor is finite, from its least and greatest
    (a NaN makes both NaN): one pass, where ``isfinite().all()`` fills a tensor of flags the
    size of the input (0.3 s against 0.01 s for a default model's 140 MB of tables)."""
    if tensor.numel() == 0:
        return True
    least, greatest = torch.aminmax(tensor)
    return bool(least.isfinite() and greatest.isfinite())


def load_weights(
    build: Callable[[], nn.Module], model_dir: Path, sha256: str | None, lazy: bool = False
) -> tuple[nn.Module, str]:
    """(``build()`` holding the weights of ``model_dir/model.safetensors``, their sha256).

    The file's sha256 must be ``sha256`` (the card's; None for a card written before cards
    held it), and every tensor finite, of the name, shape and type the card's architecture
    gives it, else ``ValueError``. With ``lazy`` the model is built on the meta device and
    takes the file's tensors as they are, so a card that claims a huge model allocates
    nothing before the weights file has been compared with it.
    """
    path = model_file(Path(model_dir), WEIGHTS_FILE)
    data = path.read_bytes()  # read once: hashed, then parsed
    state = load_tensors(path, data)
    digest = hashlib.sha256(data).hexdigest()
    del data
    if sha256 is not None and digest != sha256:
        raise ValueError(
            f"{path}: its sha256 is not the one config.json records; the weights were "
            "changed or mixed with another model's: copy the model directory again or retrain"
        )
    broken = [k for k, v in state.items() if v.is_floating_point() and not all_finite(v)]
    if broken:
        raise ValueError(
            f"{model_dir}: weights {', '.join(broken[:5])} hold NaN or infinite values; "
            "the model diverged or the file was damaged: retrain, or copy it again"
        )
    if lazy:
        with torch.device("meta"), _initialisers_skipped():
            model = build()
    else:
        model = build()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    mistyped = [k for k in expected if k in state and state[k].dtype != expected[k].dtype]
    if missing or extra or wrong or mistyped:
        if wrong:
            problem = (
                f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, config.json gives "
                f"{tuple(expected[wrong[0]].shape)}"
            )
        elif mistyped:
            key = mistyped[0]
            problem = f"{key} holds {state[key].dtype}, the network {expected[key].dtype}"
        else:
            problem = f"missing {missing[:3]}, unexpected {extra[:3]}"
        raise ValueError(
            f"{model_dir}: weights do not match config.json ({problem}); "
            "the model directory was damaged or mixed with another: retrain or copy it again"
        )
    model.load_state_dict(state, strict=True, assign=lazy)
    return model, digest


def checked_labels(labels, num_classes: int, model_dir: Path) -> list[str]:
    """The card's labels: distinct, non-empty strings, one per output of the network."""
    if (
        not isinstance(labels, list)
        or not all(isinstance(label, str) and label for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ValueError(f"{model_dir}/config.json: labels must be distinct, non-empty strings")
    if len(labels) != num_classes:
        raise ValueError(
            f"{model_dir}/config.json: {len(labels)} labels for a network with {num_classes} "
            "outputs; the card was edited or mixed with another model's: retrain or copy it again"
        )
    return labels
