"""Batch scoring inside Spark: :func:`score` adds a text model's answer to every row of a
DataFrame, where the data lives (a data lake table, parquet files), with no export step.

    from textcnn.spark import score

    scored = score(spark.read.parquet("reviews/"), "/models/reviews/model-best")
    scored.write.parquet("reviews-scored/")

The rows get ``label``, ``score`` and ``status`` (``labels`` too for a multi-label model,
``scores`` with ``all_scores=True``): the very labels and scores of ``textcnn score``, since
both run the same batch path (:meth:`TextClassifier.encode` and ``predict_proba``, through
the compiled n-gram tables). A null, empty or blank text never fails the job: its row has
no label and says why in ``status``.

Only the text column goes to Python, through a pandas UDF over Arrow batches; the other
columns stay in the JVM untouched, whatever their types (``mapInPandas`` would send every
column through pandas and back). Each executor's Python process loads the model once and
keeps it (:func:`_classifier`), for every batch, task and job it runs: Spark reuses its
Python workers (``spark.python.worker.reuse``, true by default; set to false, every task
starts a process and loads the model again). The model directory must be readable at the
same path on the driver and on every executor (a shared or mounted filesystem, or copied to
each machine), with textcnn installed in the executors' Python.

pyspark (with pandas and pyarrow) is the ``spark`` extra and is imported only here, when
:func:`score` is called: ``import textcnn`` never needs it.
"""

import logging
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .artifacts import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, model_file
from .card import TextCard, load_card

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

    from .text.classifier import TextClassifier

log = logging.getLogger(__name__)

OK, NULL_TEXT, EMPTY_TEXT = "ok", "null text", "empty text"  # a row's status
BATCH_SIZE = 8192  # texts per call of the network at most (as `textcnn score --chunk-size`)

# This process's models, by resolved directory: (the files' stamps when loaded, the model).
_models: dict[str, tuple[tuple, "TextClassifier"]] = {}
_lock = threading.Lock()
# What this process did, by resolved model directory: "loads", "batches" (calls of the
# network) and "rows". On an executor it shows whether the model was loaded once for many
# batches (tests/test_spark.py reads it from the Python workers).
COUNTS: defaultdict[str, Counter] = defaultdict(Counter)


def score(
    df: "DataFrame",
    model_dir: str | Path,
    text_col: str = "text",
    all_scores: bool = False,
    batch_size: int = BATCH_SIZE,
) -> "DataFrame":
    """``df`` with the answer of the text model in ``model_dir`` for the ``text_col`` of
    every row, in added columns:

    - ``label`` (string): the label ``textcnn score`` gives (multi-label: the most probable
      assigned one); null when the row was not scored, or a multi-label model assigns none;
    - ``labels`` (array<string>, multi-label models only): every label assigned, most
      probable first;
    - ``score`` (double): the top score (calibrated, as ``textcnn score``'s, which rounds it
      to 6 decimals); null when the row was not scored;
    - ``scores`` (map<string, double>, with ``all_scores``): every label's score;
    - ``status`` (string): ``"ok"``, or why the row was not scored: ``"null text"``,
      ``"empty text"`` (empty or only whitespace).

    Lazy, like any transformation: the work runs on the executors when the result is
    written or collected. The model card is checked here, on the driver, so a wrong path
    or a model of another kind fails at once; the weights are checked when each executor
    loads them (a damaged file fails the job with the loader's message). The network takes
    at most ``batch_size`` texts a call, within Spark's Arrow batches
    (``spark.sql.execution.arrow.maxRecordsPerBatch``, 10,000 rows by default).
    """
    _require_pyspark()
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    model_dir = Path(model_dir).resolve()  # executors get an absolute path
    card = load_card(model_dir)  # a clear ValueError for a missing or damaged directory
    if not isinstance(card, TextCard):
        raise ValueError(f"{model_dir}: an image model; textcnn.spark scores text models")
    for name in (WEIGHTS_FILE, TOKENIZER_FILE):
        model_file(model_dir, name)  # present, a plain file within the size limits
    if text_col not in df.columns:
        raise ValueError(
            f"no column {text_col!r} to score; the DataFrame has {', '.join(df.columns)}: "
            "pass text_col="
        )
    kind = df.schema[text_col].dataType
    if not isinstance(kind, T.StringType):
        raise ValueError(
            f"column {text_col!r} holds {kind.simpleString()}, not strings; cast it first: "
            f"df.withColumn({text_col!r}, df[{text_col!r}].cast('string'))"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")

    fields = [T.StructField("label", T.StringType())]
    if card.multi_label:
        fields.append(T.StructField("labels", T.ArrayType(T.StringType())))
    fields.append(T.StructField("score", T.DoubleType()))
    if all_scores:
        fields.append(T.StructField("scores", T.MapType(T.StringType(), T.DoubleType())))
    fields.append(T.StructField("status", T.StringType()))
    added = [f.name for f in fields]
    existing = {column.lower() for column in df.columns}  # Spark ignores case by default
    taken = [name for name in added if name.lower() in existing]
    if taken:
        raise ValueError(
            f"the DataFrame already has column(s) {', '.join(taken)}, which score() adds; "
            f"rename them first, e.g. df.withColumnRenamed({taken[0]!r}, 'given_{taken[0]}')"
        )

    udf = F.pandas_udf(_udf(str(model_dir), all_scores, batch_size), T.StructType(fields))
    answer = "__textcnn_answer"  # the UDF runs once; its fields become columns
    scored = df.withColumn(answer, udf(F.col(_quoted(text_col))))
    return scored.withColumns({name: F.col(answer)[name] for name in added}).drop(answer)


def _udf(model_dir: str, all_scores: bool, batch_size: int):
    """The pandas UDF's function (an iterator of text batches to an iterator of answers).

    pyspark reads its type hints, so they are objects (this module does not postpone
    annotations). Spark pickles this closure by value, and with it only a reference to
    :func:`score_batches`, a function of this module, so the model cache executors use is
    the module's own and not a copy made per task."""
    import pandas as pd

    def answers(texts: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        return score_batches(texts, model_dir, all_scores, batch_size)

    return answers


def score_batches(
    texts: Iterator["pd.Series"], model_dir: str, all_scores: bool, batch_size: int
) -> Iterator["pd.DataFrame"]:
    """For each pandas Series of texts, a DataFrame of the answers (the UDF's work, on an
    executor; also callable without Spark)."""
    import pandas as pd

    _one_thread_a_task()
    classifier = _classifier(model_dir)
    counts = COUNTS[str(Path(model_dir).resolve())]
    for batch in texts:
        null = batch.isna().tolist()
        values = batch.tolist()
        status = [
            NULL_TEXT if missing else OK if text.strip() else EMPTY_TEXT
            for missing, text in zip(null, values, strict=True)
        ]
        columns = _answers(classifier, values, status, all_scores, batch_size, counts)
        counts["rows"] += len(values)
        yield pd.DataFrame({**columns, "status": status})


def _answers(classifier, texts, status, all_scores, batch_size, counts) -> dict[str, list]:
    """label (labels), score (scores) of every text whose status is OK; None for the rest."""
    rows = len(texts)
    label: list[str | None] = [None] * rows
    top: list[float | None] = [None] * rows
    given_labels: list[list[str] | None] = [None] * rows
    every: list[dict[str, float] | None] = [None] * rows
    names = classifier.labels
    scored = [i for i, s in enumerate(status) if s == OK]
    for start in range(0, len(scored), batch_size):
        at = scored[start : start + batch_size]
        probs = classifier.predict_proba(classifier.encode([texts[i] for i in at]))
        given = classifier.given(probs)  # per text its classes, most probable first
        best = probs.max(dim=1).values.tolist()
        table = probs.tolist() if all_scores else None
        for n, i in enumerate(at):
            label[i] = names[given[n][0]] if given[n] else None
            top[i] = best[n]
            if classifier.multi_label:
                given_labels[i] = [names[c] for c in given[n]]
            if table is not None:
                every[i] = dict(zip(names, table[n], strict=True))
        counts["batches"] += 1
    columns: dict[str, list] = {"label": label}
    if classifier.multi_label:
        columns["labels"] = given_labels
    columns["score"] = top
    if all_scores:
        columns["scores"] = every
    return columns


def _classifier(model_dir: str) -> "TextClassifier":
    """The model of ``model_dir``, loaded once per process and kept; loaded again only when
    its files change (a model retrained into the same directory)."""
    from .loading import load

    where = str(Path(model_dir).resolve())
    stamp = _stamp(Path(where))
    with _lock:
        cached = _models.get(where)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        classifier = load(where)  # checked: files, weights' sha256, answers
        _models[where] = (stamp, classifier)
        COUNTS[where]["loads"] += 1
        log.info("loaded %s in process %d (%s)", where, os.getpid(), classifier.inference)
        return classifier


def _stamp(model_dir: Path) -> tuple:
    """When and how large the card and the weights are: a changed model changes them."""
    stamps = []
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            info = (model_dir / name).stat()
            stamps.append((info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append(None)  # the loader says what is wrong
    return tuple(stamps)


def _one_thread_a_task() -> None:
    """The compiled kernel shares a batch among numba's threads, one per core by default;
    Spark already runs a task per core, and tells its Python workers how many cores a task
    has in ``OMP_NUM_THREADS`` (``spark.task.cpus``), so inside a task the kernel keeps to
    those. On an executor of many cores this keeps each task's process from starting a
    thread per core; on the two cores here one thread or two a task measured within the
    noise of a shared machine (200,000 rows, warm local[2]: 27,000-56,000 rows/s either
    way)."""
    try:
        from pyspark import TaskContext
    except ImportError:  # called outside Spark
        return
    cores = os.environ.get("OMP_NUM_THREADS", "")
    if TaskContext.get() is not None and cores.isdigit() and int(cores) > 0:
        import numba

        numba.set_num_threads(min(int(cores), numba.config.NUMBA_NUM_THREADS))


def _quoted(name: str) -> str:
    """A column name as Spark reads it literally (dots and spaces included)."""
    return "`" + name.replace("`", "``") + "`"


def _require_pyspark() -> None:
    missing = []
    for module in ("pyspark", "pandas", "pyarrow"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(
            f"textcnn.spark needs {', '.join(missing)}: pip install 'textcnn[spark]' "
            "(and a Java runtime for Spark itself)"
        )
