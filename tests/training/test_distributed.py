"""Data-parallel training with 2 Gloo processes on 127.0.0.1 (and torchrun for the CLI)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.conftest import DATA_DIR
from textcnn.artifacts import load_tensors, save_tensors
from textcnn.models import TextCNN, TextCNNConfig
from textcnn.training.distributed import ONE_PROCESS, World
from textcnn.training.objectives import SingleLabel
from textcnn.training.optim import FitSettings
from textcnn.training.text import TextBatches
from textcnn.training.trainer import Trainer

TREC = DATA_DIR / "trec"
needs_trec = pytest.mark.skipif(
    not (TREC / "train.tsv").is_file(), reason=f"TREC not found in {DATA_DIR} (TEXTCNN_DATA_DIR)"
)
TEXTCNN = [sys.executable, "-m", "textcnn"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


VOCABULARY = 2_000  # a step of 50 short texts uses a few hundred of the rows


def small_model() -> TextCNN:
    torch.manual_seed(0)
    return TextCNN(
        TextCNNConfig(
            vocab_size=VOCABULARY,
            embed_dim=8,
            num_classes=3,
            kernel_sizes=(2, 3),
            num_filters=4,
            dropout=0,
        )
    )


def one_step(world: World, workdir: Path, case: tuple) -> tuple[dict[str, torch.Tensor], dict]:
    """One optimisation step over 50 examples (one batch), with this world's share of them:
    the weights after it and the epoch's record."""
    model = small_model()
    generator = torch.Generator().manual_seed(1)
    ids = [
        torch.randint(1, VOCABULARY, (int(n),), generator=generator).tolist()
        for n in torch.randint(1, 12, (50,), generator=generator)
    ]
    targets = torch.randint(0, 3, (50,), generator=generator)
    optimizer, weighted, exchange, *clip = case
    weights = torch.tensor([0.5, 1.0, 3.0]) if weighted else None
    settings = FitSettings(
        batch_size=50,
        optimizer=optimizer,
        progress=False,
        device="cpu",
        exchange=exchange,
        clip_norm=clip[0] if clip else 0.0,
    )
    trainer = Trainer(model, settings, workdir, SingleLabel(weights), world)
    record = trainer.train_epoch(TextBatches(ids, targets), 1)
    return model.state_dict(), record


def _rank(rank: int, port: int, workdir: str, case: tuple[str, bool]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    state, record = one_step(World(rank, 2), Path(workdir), case)
    if rank == 0:
        save_tensors(state, Path(workdir) / "ddp.safetensors")
        (Path(workdir) / "record.json").write_text(json.dumps(record))
    dist.barrier()  # neither leaves the group while the other may still talk to it
    dist.destroy_process_group()
    # Leave without the interpreter's teardown: once in a CI run (1 of 3 cases), gloo's
    # threads were destroyed still joinable at exit ("terminate called without an active
    # exception", SIGABRT) after the rank had done and saved everything.
    os._exit(0)


@pytest.mark.parametrize(
    "case",
    [
        ("sgd", False, "rows"),
        ("sgd", True, "rows"),
        ("adadelta", False, "rows"),
        ("adamw", False, "rows"),
        ("sgd", False, "rows", 0.05),
        ("adadelta", False, "rows", 0.05),
        ("sgd", False, "dense"),
        ("adadelta", False, "dense"),
    ],
    ids=[
        "sgd",
        "sgd-class-weighted",
        "lazy-adadelta",
        "adamw",
        "sgd-clipped",
        "lazy-adadelta-clipped",
        "sgd-dense",
        "adadelta-dense",
    ],
)
def test_one_ddp_step_over_two_ranks_equals_one_process_over_all(tmp_path, case):
    """2 ranks x 25 examples give the weights one process gets from the 50 examples, with
    the embedding rows exchanged (rows) or DDP's dense all-reduce of the table (dense).
    SGD is linear in the gradient, so a wrong share or scale shows; LazyAdadelta keeps the
    summed rows sparse, AdamW gets them dense as one process does."""
    mp.spawn(_rank, args=(free_port(), str(tmp_path), case), nprocs=2, join=True)
    ddp = load_tensors(tmp_path / "ddp.safetensors")
    alone, _ = one_step(ONE_PROCESS, tmp_path, case)
    assert set(ddp) == set(alone)
    for name, tensor in alone.items():
        torch.testing.assert_close(ddp[name], tensor, atol=1e-6, rtol=0, msg=name)
    before = small_model().state_dict()
    assert not all(torch.equal(before[k], alone[k]) for k in before)  # the step moved them
    sent = json.loads((tmp_path / "record.json").read_text())["sent_bytes_per_step"]
    table = VOCABULARY * 8 * 4  # the embedding gradient's bytes
    if case[2] == "rows":  # 25 texts of at most 11 tokens: under 300 rows of 8 floats
        assert sent < table / 4
    else:  # the whole table (and the layers) through a 2-rank ring all-reduce
        assert sent > table


def train_args(output: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--data",
        str(TREC / "train.tsv"),
        "--test",
        str(TREC / "test.tsv"),
        "-o",
        str(output),
        "--progress=false",
        "--seed",
        "3",
        "--recipe",
        "rand",
        *extra,
    ]


def card(output: Path) -> dict:
    return json.loads((output / "model-best" / "config.json").read_text())


@needs_trec
def test_two_process_training_matches_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [*TEXTCNN, *train_args(tmp_path / "one", "--epochs", "4")], env=env, capture_output=True
    )
    assert one.returncode == 0, one.stderr.decode()[-2000:]
    two = subprocess.run(
        [*TEXTCNN, *train_args(tmp_path / "two", "--epochs", "4", "--nproc", "2")],
        capture_output=True,
    )
    assert two.returncode == 0, two.stderr.decode()[-2000:]
    single, joined = card(tmp_path / "one"), card(tmp_path / "two")
    assert single["world_size"] == 1 and joined["world_size"] == 2
    # each rank trained on half of every batch: the epoch history is the group's
    accuracy = joined["metrics"]["test"]["accuracy"]
    assert abs(accuracy - single["metrics"]["test"]["accuracy"]) <= 0.015
    assert accuracy > 0.8
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "metrics.jsonl",
        "model-best",
        "model-last",
    ]


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def read_environ(pid: int) -> bytes:
    try:
        return b"\0" + Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


@needs_trec
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the ranks")
def test_a_killed_rank_stops_the_run_with_a_message_and_resume_finishes_it(tmp_path):
    output = tmp_path / "run"
    args = [*TEXTCNN, *train_args(output, "--epochs", "4", "--nproc", "2", "--timeout", "60")]
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = output / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 1):
        assert run.poll() is None and time.monotonic() < deadline, "the run never got going"
        time.sleep(0.2)
    ranks = [p for p in descendants(run.pid) if b"\0RANK=1\0" in read_environ(p)]
    assert len(ranks) == 1, ranks
    os.kill(ranks[0], signal.SIGKILL)
    killed_at = time.monotonic()
    out, _ = run.communicate(timeout=90)
    assert run.returncode != 0
    assert time.monotonic() - killed_at < 60, "the run did not stop within the timeout"
    assert "a training process failed" in out and "--resume --nproc 2" in out
    assert "Traceback" not in out, out[-3000:]  # the agent's own traceback is not shown
    assert not (output / "model-best").exists()
    assert (output / "checkpoint" / "state.json").is_file()

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch" in resumed.stderr
    finished = card(output)
    assert finished["world_size"] == 2 and finished["epochs_run"] == 4
    assert metrics.read_text().count("\n") == 4
