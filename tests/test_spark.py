"""textcnn.spark.score inside Spark (local mode, two cores): the labels and scores of
`textcnn score` for the same rows, a status instead of a failed job for null and blank
texts, every label's score on request, the model loaded once per Python worker, and clear
errors for a wrong model directory or column."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn import spark as textcnn_spark
from textcnn.cli import app
from textcnn.training.pipeline import fit_and_save

FIXTURES = Path(__file__).parent / "fixtures"
# pyspark 4 prints this advice on every pandas UDF under pandas 3; the answers are checked here
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


def spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    missing = [m for m in ("pyspark", "pandas", "pyarrow") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{', '.join(missing)} missing: the spark extra (pip install -e '.[spark]')"
    home = os.environ.get("JAVA_HOME")
    java = shutil.which("java") or (home and shutil.which(str(Path(home) / "bin" / "java")))
    if not java:
        return "no Java runtime for Spark (Debian: apt-get install default-jre-headless)"
    banner = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(?:1\.)?(\d+)', banner)
    import pyspark

    needed = 17 if int(pyspark.__version__.split(".")[0]) >= 4 else 8
    if found is None or int(found.group(1)) < needed:
        return f"pyspark {pyspark.__version__} needs Java {needed} or later: {banner[:80]!r}"
    return None


runner = CliRunner()


@pytest.fixture(scope="module")
def spark():
    if (reason := spark_missing()) is not None:
        pytest.skip(reason)
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as patch:
        # the Python workers run this interpreter (pyspark's default is `python3` on PATH)
        patch.setenv("PYSPARK_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("textcnn-tests")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spark-model")
    return fit_and_save(tiny_config(write_tsv(tmp / "train.tsv", tiny_texts()), tmp / "run"))


def frame(spark, rows, partitions=4):
    """A DataFrame of (id, text) rows dealt over ``partitions`` partitions."""
    return spark.createDataFrame(rows, "id string, text string").repartition(partitions)


def by_id(df) -> dict:
    return {row["id"]: row for row in df.collect()}


def varied_texts(n: int) -> list[tuple[str, str]]:
    """(id, text): the tiny corpus's sentences, with accents, CJK, emoji, punctuation and a
    text past the maximum length among them (ASCII and not: both tokenizer paths)."""
    texts = [text for text, _ in tiny_texts(n, seed=4)]
    texts[::25] = [
        f"{t} {extra}"
        for t, extra in zip(
            texts[::25], ["café naïve", "日本 🎬", "don't, it's dull!", "good " * 300] * n
        )
    ]
    return [(f"r{i}", text) for i, text in enumerate(texts)]


def cli_scores(model_dir, rows, tmp_path, *options) -> dict:
    """`textcnn score` over the rows (a JSONL file with ids), row by id."""
    source, output = tmp_path / "rows.jsonl", tmp_path / "scores.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows))
    command = ["score", str(model_dir), str(source), "-o", str(output), "--id-field", "id"]
    result = runner.invoke(app, [*command, *options])
    assert result.exit_code == 0, result.output
    return {r["id"]: r for r in map(json.loads, output.read_text().splitlines())}


def test_spark_gives_the_labels_and_scores_of_textcnn_score(spark, model_dir, tmp_path):
    rows = varied_texts(300)
    df = frame(spark, rows, partitions=5)
    assert df.rdd.getNumPartitions() == 5
    got = by_id(textcnn_spark.score(df, model_dir))
    expected = cli_scores(model_dir, rows, tmp_path)
    assert got.keys() == expected.keys() and len(got) == 300
    assert [got[i]["label"] for i in expected] == [r["label"] for r in expected.values()]
    assert [round(got[i]["score"], 6) for i in expected] == [r["score"] for r in expected.values()]
    assert {row["status"] for row in got.values()} == {"ok"}
    # and to the last bit, against the same model in this process
    probabilities = textcnn.load(model_dir).predict_proba([text for _, text in rows])
    assert [got[i]["score"] for i, _ in rows] == probabilities.max(dim=1).values.tolist()
    assert list(got["r0"].asDict()) == ["id", "text", "label", "score", "status"]


def test_null_empty_and_blank_texts_get_a_status_and_the_rest_are_scored(spark, model_dir):
    rows = [
        ("good", "a good fun film"),
        ("null", None),
        ("empty", ""),
        ("blank", " \t\n  "),
        ("bad", "boring dull plot"),
    ] * 20
    rows = [(f"{name}-{n}", text) for n, (name, text) in enumerate(rows)]
    got = by_id(textcnn_spark.score(frame(spark, rows, partitions=3), model_dir))
    assert len(got) == len(rows)
    classifier = textcnn.load(model_dir)
    for row_id, text in rows:
        row = got[row_id]
        if row_id.startswith(("null", "empty", "blank")):
            status = "null text" if text is None else "empty text"
            assert (row["status"], row["label"], row["score"]) == (status, None, None), row_id
        else:
            [result] = classifier.classify([text])
            assert row["status"] == "ok"
            assert (row["label"], row["score"]) == (result.label, result.predictions[0].score)


def test_all_scores_gives_every_label_its_score(spark, model_dir, tmp_path):
    rows = varied_texts(60) + [("missing", None)]
    got = by_id(textcnn_spark.score(frame(spark, rows), model_dir, all_scores=True))
    expected = cli_scores(model_dir, rows[:-1], tmp_path, "--all-scores")
    classifier = textcnn.load(model_dir)
    probabilities = classifier.predict_proba([text for _, text in rows[:-1]]).tolist()
    for (row_id, _), every in zip(rows, probabilities):
        scores = got[row_id]["scores"]
        assert scores == dict(zip(classifier.labels, every)), row_id
        assert got[row_id]["score"] == max(scores.values())
        assert {k: round(v, 6) for k, v in scores.items()} == expected[row_id]["scores"]
    assert got["missing"]["scores"] is None and got["missing"]["status"] == "null text"


def test_the_model_is_loaded_once_per_python_worker_for_every_batch_and_job(
    spark, model_dir, tmp_path
):
    """Two jobs of 400 rows in 4 partitions, 10 texts a network call: 80 calls, and each
    Python worker loaded the model once. A probe job then reads the counts in every worker
    it reaches: they scored every row, so the workers outlived their tasks and jobs (Spark
    reused them) and the probe reached them all."""
    fresh = Path(shutil.copytree(model_dir, tmp_path / "model"))  # a key no test used yet
    df = frame(spark, varied_texts(400), partitions=4)
    for _ in range(2):
        assert len(textcnn_spark.score(df, fresh, batch_size=10).collect()) == 400
    key = str(fresh.resolve())

    def probe(batches):
        import time

        import pandas as pd

        import textcnn.spark

        for _ in batches:
            pass
        time.sleep(0.3)  # the tasks overlap, so each of the two cores' workers runs one
        counts = textcnn.spark.COUNTS.get(key, {})
        fields = ("loads", "batches", "rows")
        yield pd.DataFrame([{"pid": os.getpid(), **{f: counts.get(f, 0) for f in fields}}])

    schema = "pid long, loads long, batches long, rows long"
    probed = spark.range(0, 8, 1, numPartitions=8).mapInPandas(probe, schema).collect()
    workers = {row["pid"]: row for row in probed if row["rows"]}
    assert sum(w["rows"] for w in workers.values()) == 2 * 400, probed
    assert sum(w["batches"] for w in workers.values()) == 2 * 4 * 10, probed
    assert [w["loads"] for w in workers.values()] == [1] * len(workers), probed


def test_a_process_loads_a_directory_once_and_again_when_its_model_changes(model_dir, tmp_path):
    pd = pytest.importorskip("pandas", reason="pandas comes with the spark extra")

    fresh = Path(shutil.copytree(model_dir, tmp_path / "model"))
    link = tmp_path / "link"
    link.symlink_to(fresh)
    counts = textcnn_spark.COUNTS[str(fresh.resolve())]
    texts = pd.Series(["a good film", None, "dull"])
    for where in (fresh, link, fresh):  # a link is the directory it points to
        [answers] = textcnn_spark.score_batches(iter([texts]), str(where), False, 2)
        assert answers["status"].tolist() == ["ok", "null text", "ok"]
    assert (counts["loads"], counts["batches"], counts["rows"]) == (1, 3, 9)
    config = fresh / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    list(textcnn_spark.score_batches(iter([texts]), str(fresh), False, 2))  # retrained
    assert counts["loads"] == 2


def test_a_wrong_model_directory_or_column_is_a_clear_error(spark, model_dir, tmp_path):
    from pyspark.errors import PythonException

    df = frame(spark, [("1", "a good film")], partitions=1)
    with pytest.raises(ValueError, match="not a model directory"):
        textcnn_spark.score(df, tmp_path / "missing")
    with pytest.raises(ValueError, match="an image model"):
        textcnn_spark.score(df, FIXTURES / "image-v1")
    damaged = Path(shutil.copytree(model_dir, tmp_path / "damaged"))
    (damaged / "config.json").write_text("{")
    with pytest.raises(ValueError, match="config.json"):
        textcnn_spark.score(df, damaged)
    with pytest.raises(ValueError, match="no column 'body'.*id, text"):
        textcnn_spark.score(df, model_dir, text_col="body")
    with pytest.raises(ValueError, match="holds bigint, not strings"):
        textcnn_spark.score(spark.range(3).withColumnRenamed("id", "text"), model_dir)
    with pytest.raises(ValueError, match="already has column.*label"):
        textcnn_spark.score(df.withColumn("label", df["id"]), model_dir)
    # weights that do not match the card: found when the executor loads them, and the job
    # fails with the loader's message
    tampered = Path(shutil.copytree(model_dir, tmp_path / "tampered"))
    weights = tampered / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    scored = textcnn_spark.score(df, tampered)  # lazy: the card is sound
    with pytest.raises(PythonException, match="sha256 is not the one config.json records"):
        scored.collect()


def test_a_multi_label_model_gives_what_textcnn_score_gives(spark, tmp_path):
    from tests.training.test_multilabel import emotions, write_jsonl

    data = write_jsonl(tmp_path / "train.jsonl", emotions(200))
    settings = {"epochs": 8, "ngram_buckets": 256, "dev_fraction": 0.2}
    multi = fit_and_save(tiny_config(data, tmp_path / "run", **settings))
    rows = [(f"e{i}", row["text"]) for i, row in enumerate(emotions(120, seed=3))]
    got = by_id(textcnn_spark.score(frame(spark, rows), multi))
    expected = cli_scores(multi, rows, tmp_path)
    assert [got[i]["label"] for i in expected] == [r["label"] for r in expected.values()]
    assert [got[i]["labels"] for i in expected] == [r["labels"] for r in expected.values()]
    assert [round(got[i]["score"], 6) for i in expected] == [r["score"] for r in expected.values()]
    assert any(len(r["labels"]) == 2 for r in expected.values())  # several labels were given


def test_without_pyspark_the_error_says_which_extra_to_install(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"needs pyspark.*pip install 'textcnn\[spark\]'"):
        textcnn_spark.score(None, model_dir)
