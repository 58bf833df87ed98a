"""Batch scoring in Spark against ``textcnn score``, on the same rows, in one run.

    python benchmarks/spark.py [--rows 1000000] [--model DIR | --recipe default --epochs 3]
                               [--files 8]

Builds ``--rows`` texts recombined from MR's sentences (the first half of one sentence's
words, then the second half of another's: distinct texts of MR's length and vocabulary)
and writes them twice: as ``--files`` parquet files of (id, text), a table as Spark jobs
read them, and as a text file, one text a line, as ``textcnn score`` reads it. Then times

- Spark in local mode (``local[2]``, the two cores here): read the parquet table,
  ``textcnn.spark.score``, write (id, label, score, status) as parquet; the clock starts
  after the session is up (its start is reported apart) and includes the Python workers
  starting and loading the model, as in every new session; then the same job again
  (``_again``: the workers kept, the model loaded, as for every later job);
- ``textcnn score`` in a process of its own: read the text file, score, write JSONL;

and checks that every row got the same label from both (and the same score, to the 6
decimals ``textcnn score`` writes). The model is ``--model``, else one trained on MR with
``--recipe`` for ``--epochs`` (speed does not depend on them). Needs the spark extra and
Java; reads ``$TEXTCNN_DATA_DIR`` (default ``../shared/datasets``); writes
``benchmarks/results/spark.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serving import DATA

from textcnn.text.corpora import read_corpus
from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

RESULTS = Path(__file__).parent / "results" / "spark.json"


def recombined(texts: list[str], rows: int, seed: int = 0) -> list[str]:
    """``rows`` texts, each the first half of one sentence's words and the second half of
    another's."""
    rng = random.Random(seed)
    words = [text.split() for text in texts]
    out = []
    for _ in range(rows):
        first, second = rng.choice(words), rng.choice(words)
        out.append(" ".join(first[: len(first) // 2] + second[len(second) // 2 :]) or "empty")
    return out


def write_inputs(texts: list[str], files: int, tmp: Path) -> tuple[Path, Path]:
    """(a folder of ``files`` parquet files of (id, text), a text file of the same rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table, lines = tmp / "table", tmp / "lines.txt"
    table.mkdir()
    per_file = -(-len(texts) // files)
    for k in range(files):
        ids = range(k * per_file, min((k + 1) * per_file, len(texts)))
        part = pa.table({"id": pa.array(ids, pa.int64()), "text": [texts[i] for i in ids]})
        pq.write_table(part, table / f"part-{k:05d}.parquet")
    lines.write_text("".join(text + "\n" for text in texts))
    return table, lines


def time_spark(model_dir: Path, table: Path, out: Path) -> dict:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter
    from pyspark.sql import SparkSession

    from textcnn.spark import score

    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("textcnn-spark-benchmark")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    session = time.perf_counter() - started
    seconds = []
    for run in range(2):  # the first starts the Python workers and loads the model
        started = time.perf_counter()
        scored = score(spark.read.parquet(str(table)), model_dir)
        scored.select("id", "label", "score", "status").write.parquet(f"{out}-{run}")
        seconds.append(time.perf_counter() - started)
    partitions = spark.read.parquet(str(table)).rdd.getNumPartitions()
    version = spark.version
    spark.stop()
    return {
        "spark": version,
        "master": "local[2]",
        "partitions": partitions,
        "session_start_s": session,
        "seconds": seconds[0],
        "seconds_again": seconds[1],
        "output": "parquet: id, label, score, status",
    }


def time_textcnn_score(model_dir: Path, lines: Path, out: Path) -> dict:
    command = [sys.executable, "-m", "textcnn.cli", "score", str(model_dir), str(lines)]
    started = time.perf_counter()
    subprocess.run([*command, "-o", str(out)], check=True, capture_output=True)
    return {"seconds": time.perf_counter() - started, "output": "JSONL: id, label, score"}


def compare(spark_out: Path, score_out: Path, rows: int) -> dict:
    """Labels and scores of both, row by row (Spark's ids are 0-based, the lines' 1-based)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(spark_out).sort_by("id")
    assert table["id"].to_pylist() == list(range(rows)), "Spark lost or repeated rows"
    labels, scores = table["label"].to_pylist(), table["score"].to_pylist()
    statuses = pc.value_counts(table["status"]).to_pylist()
    differing, largest = 0, 0.0
    with score_out.open() as handle:
        for n, line in enumerate(handle):
            row = json.loads(line)
            differing += row["label"] != labels[n]
            largest = max(largest, abs(row["score"] - round(scores[n], 6)))
    return {
        "labels_identical": differing == 0,
        "labels_differing": differing,
        "largest_score_difference": largest,
        "spark_statuses": {s["values"]: s["counts"] for s in statuses},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--model", type=Path, help="a text model directory (else trained)")
    parser.add_argument("--recipe", default="default", help="the recipe trained without --model")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--files", type=int, default=8, help="parquet files of the table")
    args = parser.parse_args()
    try:
        import pyspark  # noqa: F401
    except ImportError:
        sys.exit("skipped: pyspark is not installed (pip install -e '.[spark]')")
    if not (DATA / "mr" / "all.tsv").is_file():
        sys.exit(f"skipped: no MR data at {DATA}; set TEXTCNN_DATA_DIR")
    texts = recombined(read_corpus(DATA / "mr" / "all.tsv").texts, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = args.model
        if model_dir is None:
            overrides = {"data": str(DATA / "mr" / "all.tsv"), "epochs": args.epochs}
            overrides |= {"recipe": args.recipe, "output": str(tmp / "mr"), "progress": False}
            model_dir = fit_and_save(load_config(overrides=overrides))
        table, lines = write_inputs(texts, args.files, tmp)
        spark = time_spark(model_dir, table, tmp / "spark-out")
        ours = time_textcnn_score(model_dir, lines, tmp / "scores.jsonl")
        checked = compare(tmp / "spark-out-0", tmp / "scores.jsonl", args.rows)
        card = json.loads((Path(model_dir) / "config.json").read_text())
    spark["rows_per_s"] = args.rows / spark["seconds"]
    spark["rows_per_s_again"] = args.rows / spark["seconds_again"]
    ours["rows_per_s"] = args.rows / ours["seconds"]
    result = {
        "rows": args.rows,
        "texts": "MR sentences recombined (first half of one, second half of another)",
        "model": str(args.model) if args.model else f"trained: {args.recipe}, {args.epochs} ep",
        "recipe": card.get("settings", {}).get("recipe"),
        "cores": os.cpu_count(),
        "spark (textcnn.spark.score)": spark,
        "textcnn score": ours,
        "spark_to_textcnn_score": spark["rows_per_s"] / ours["rows_per_s"],
        **checked,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not checked["labels_identical"]:
        sys.exit(f"{checked['labels_differing']} rows got other labels from Spark")


if __name__ == "__main__":
    main()
