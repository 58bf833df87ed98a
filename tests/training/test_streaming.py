"""Training on a corpus read in blocks (--stream): the scan, the dev split by hash, the
blocks each rank reads, and a run killed in the middle of an epoch that resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import torch

from tests.conftest import tiny_texts, write_tsv
from tests.training.test_distributed import descendants, read_environ
from textcnn.artifacts import load_tensors
from textcnn.text import stream
from textcnn.text.corpora import ReaderOptions
from textcnn.text.stream import row_hash, scan_corpus
from textcnn.text.tokenizer import train_tokenizer
from textcnn.training.config import TokenizerConfig
from textcnn.training.distributed import World
from textcnn.training.streaming import Position, StreamBatches

TEXTCNN = [sys.executable, "-m", "textcnn"]


@pytest.fixture
def corpus_file(tmp_path):
    return write_tsv(tmp_path / "big.tsv", tiny_texts(3000, seed=4))


def every_row(corpus) -> list[tuple[str, str]]:
    return [(text, label) for _, text, label in corpus.rows(list(range(len(corpus.block_rows))))]


def test_the_scan_counts_training_rows_per_block_and_holds_dev_out_by_hash(corpus_file):
    corpus, dev = scan_corpus(corpus_file, ReaderOptions(), 0.1, seed=0)
    rows = tiny_texts(3000, seed=4)
    train = every_row(corpus)
    assert len(train) == len(corpus) == sum(corpus.block_rows)
    assert len(corpus.block_rows) > 10  # a small file is still cut into many blocks
    assert len(train) + len(dev) == len(rows)
    assert Counter(train) + Counter(zip(dev.texts, dev.labels, strict=True)) == Counter(rows)
    # a text is on one side only, by its hash: the same split on every run, and duplicates
    # never reach both sides
    assert all(row_hash(t) < 0.1 for t in dev.texts)
    assert all(row_hash(t) >= 0.1 for t, _ in train)
    assert not set(dev.texts) & {t for t, _ in train}
    assert corpus.counts == Counter(label for _, label in train)
    again, dev_again = scan_corpus(corpus_file, ReaderOptions(), 0.1, seed=0)
    assert dev_again.texts == dev.texts and again.fingerprint() == corpus.fingerprint()


def test_dev_is_capped_by_moving_the_hash_bound_down(corpus_file, monkeypatch):
    monkeypatch.setattr(stream, "DEV_MAX", 50)
    corpus, dev = scan_corpus(corpus_file, ReaderOptions(), 0.5, seed=0)
    assert 0 < len(dev) <= 50
    assert max(row_hash(t) for t in dev.texts) < corpus.dev_below < 0.5
    assert len(every_row(corpus)) + len(dev) == 3000


def test_dev_rows_of_a_label_never_trained_on_are_left_out_and_an_empty_dev_is_refused(
    tmp_path, monkeypatch
):
    rows = tiny_texts(400)
    rare = next(f"rare text {i}" for i in range(10_000) if row_hash(f"rare text {i}") < 0.1)
    path = write_tsv(tmp_path / "rare.tsv", [*rows, (rare, "rare")])
    corpus, dev = scan_corpus(path, ReaderOptions(), 0.1, seed=0)
    assert "rare" not in corpus.counts and "rare" not in dev.labels and rare not in dev.texts
    monkeypatch.setattr(stream, "DEV_MAX", 5)  # five copies of the lowest hash: a tie at the cap
    lowest = min((t for t, _ in rows), key=row_hash)
    path = write_tsv(tmp_path / "ties.tsv", [*rows, *[(lowest, "positive")] * 5])
    with pytest.raises(ValueError, match="no dev rows held out.*--dev-fraction or pass a dev"):
        scan_corpus(path, ReaderOptions(), 0.1, seed=0)


def test_a_bad_row_in_the_middle_names_its_line_or_is_counted(tmp_path):
    lines = ["label\ttext"] + [f"{label}\t{text}" for text, label in tiny_texts(500)]
    lines.insert(300, "positive\tone\ttoo many")
    path = tmp_path / "bad.tsv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad\.tsv:301: 3 fields where the header has 2"):
        scan_corpus(path, ReaderOptions(), 0.1, seed=0)
    corpus, dev = scan_corpus(path, ReaderOptions(skip_bad_rows=True), 0.1, seed=0)
    assert corpus.report.skipped == {"wrong number of fields": 1}
    assert len(every_row(corpus)) + len(dev) == 500


def batches(corpus, tokenizer, rank: int, size: int, epoch: int, start=None) -> list:
    stream_ = StreamBatches(
        corpus, tokenizer, {"negative": 0, "positive": 1}, 20, World(rank, size), 0, 200
    )
    return list(stream_.epoch(epoch, start))


def test_ranks_read_disjoint_blocks_and_take_the_same_number_of_steps(corpus_file):
    corpus, _ = scan_corpus(corpus_file, ReaderOptions(), 0.1, seed=0)
    tokenizer = train_tokenizer(corpus.texts, TokenizerConfig())
    parts = [batches(corpus, tokenizer, rank, 2, epoch=1) for rank in range(2)]
    steps = [[b for b in part if not isinstance(b, Position)] for part in parts]
    assert len(steps[0]) == len(steps[1]) > 50
    assert all(len(b[0]) == 10 and b[2] == 20 for part in steps for b in part)  # halves of 20
    seen = [Counter(tuple(row.tolist()) for b in part for row in b[0]) for part in steps]
    assert sum(sum(c.values()) for c in seen) <= len(corpus)
    one = [b for b in batches(corpus, tokenizer, 0, 1, epoch=1) if not isinstance(b, Position)]
    assert len(one) == len(corpus) // 20  # one process reads every row
    other = [b for b in batches(corpus, tokenizer, 0, 1, epoch=2) if not isinstance(b, Position)]
    assert not torch.equal(one[0][0], other[0][0])  # each epoch in another order


def test_a_stream_continues_from_a_position_exactly(corpus_file):
    corpus, _ = scan_corpus(corpus_file, ReaderOptions(), 0.1, seed=0)
    tokenizer = train_tokenizer(corpus.texts, TokenizerConfig())
    whole = batches(corpus, tokenizer, 1, 2, epoch=3)
    marks = [i for i, b in enumerate(whole) if isinstance(b, Position)]
    assert len(marks) >= 3
    cut = marks[1]
    rest = batches(corpus, tokenizer, 1, 2, epoch=3, start=whole[cut])
    assert len(rest) == len(whole) - cut - 1
    for a, b in zip(whole[cut + 1 :], rest, strict=True):
        if isinstance(a, Position):
            assert a == b
        else:
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_a_file_too_small_for_one_batch_per_process_says_what_to_lower(tmp_path):
    path = write_tsv(tmp_path / "small.tsv", tiny_texts(40))
    result = subprocess.run(
        [*stream_args(path, tmp_path / "run"), "--batch-size", "50"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "give no whole batch of 50" in result.stderr and "--batch-size" in result.stderr


def stream_args(data, output, *extra):
    return [
        *TEXTCNN,
        "train",
        "--data",
        str(data),
        "-o",
        str(output),
        "--stream",
        "--recipe",
        "rand",
        "--progress=false",
        "--epochs",
        "2",
        "--patience",
        "0",
        "--seed",
        "5",
        "--set",
        "embed_dim=16",
        "--set",
        "num_filters=8",
        "--set",
        "stream_buffer=300",
        "--checkpoint-minutes",
        "0",
        *extra,
    ]


@pytest.mark.parametrize("nproc", [1, 2])
def test_a_run_killed_in_the_middle_of_an_epoch_resumes_to_the_same_model(
    tmp_path, corpus_file, nproc
):
    """One process killed, or one rank of two (the other stops on its own): --resume
    continues from the checkpoint inside the epoch and ends with the same weights as a run
    that was never stopped."""
    args = ["--nproc", str(nproc), "--timeout", "60"]
    straight = subprocess.run(
        stream_args(corpus_file, tmp_path / "straight", *args), capture_output=True
    )
    assert straight.returncode == 0, straight.stderr.decode()[-2000:]
    output = tmp_path / "killed"
    run = subprocess.Popen(stream_args(corpus_file, output, *args), stderr=subprocess.PIPE)
    state = output / "checkpoint" / "state.json"
    deadline = time.monotonic() + 180
    while True:  # kill it once a checkpoint inside the second epoch exists
        assert run.poll() is None and time.monotonic() < deadline, "never checkpointed"
        try:
            partial = json.loads(state.read_text()).get("partial")
        except (OSError, ValueError):
            partial = None
        if partial and partial["epoch"] == 2:
            break
        time.sleep(0.05)
    if nproc == 1:
        victim = run.pid
    else:
        victim = next(p for p in descendants(run.pid) if b"\0RANK=1\0" in read_environ(p))
    os.kill(victim, signal.SIGKILL)
    run.communicate(timeout=120)
    assert run.returncode != 0
    assert not (output / "model-best").exists()
    resumed = subprocess.run(
        [*stream_args(corpus_file, output, *args), "--resume"], capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    a = load_tensors(tmp_path / "straight" / "model-best" / "model.safetensors")
    b = load_tensors(output / "model-best" / "model.safetensors")
    assert set(a) == set(b)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    card = json.loads((output / "model-best" / "config.json").read_text())
    assert card["data"]["train"]["streamed"] is True and card["world_size"] == nproc
