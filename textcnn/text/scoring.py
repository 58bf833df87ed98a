"""Batch scoring of large files: streamed in chunks, in input order, resumable.

Input: CSV/TSV/JSONL (text and optional id columns) or plain text, one text
per line (a ``.txt`` file or standard input). Output: JSONL or CSV (by the
output's extension) with the row id, label, score and, on request, the score
of every label. ``resume=True`` counts the complete rows already written,
drops a partly written last row, and continues after them, so an
interrupted run ends with every row exactly once.
"""

from __future__ import annotations

import csv
import heapq
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from tqdm.auto import tqdm

from ..artifacts import atomic_file, read_json, write_json
from .classifier import TextClassifier, collection_paused
from .corpora import (
    ReaderOptions,
    ReadReport,
    detect_format,
    iter_examples,
    kept_rows,
    numbered_lines,
)
from .score_rows import CsvRows, ScoreWriter

SHARD_ROWS = 1024  # input rows per block dealt to the shards
JSON_ROW = re.compile(r'\{"row": (\d+), ')  # how a shard's JSONL row starts


@dataclass
class ScoreSummary:
    rows: int = 0  # rows written by this run
    abstained: int = 0  # rows without a label (under min_score; multi-label: none assigned)
    resumed_after: int = 0  # rows found already written
    seconds: float = 0.0
    labels: Counter = field(default_factory=Counter)
    read: ReadReport = field(default_factory=ReadReport)  # rows read and bad rows skipped

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _input_format(path: str, given: str | None) -> str:
    if given:
        return given
    if path == "-" or Path(path).suffix.lower() == ".txt":
        return "lines"  # plain text: one text per line
    return detect_format(Path(path))


def _rows(path: str, options: ReaderOptions, report: ReadReport) -> Iterator[tuple[str, str]]:
    """(row id, text) pairs; the id is the id column, else the line number."""
    if path == "-" or options.format == "lines":  # a text a line: no Example per row
        stdin = path == "-"  # its bytes, unless a caller replaced it with a text stream
        source = nullcontext(getattr(sys.stdin, "buffer", sys.stdin)) if stdin else None
        with source or open(path, "rb") as handle:
            lines = numbered_lines(handle, "stdin" if stdin else path)
            for number, line in kept_rows(lines, options, report):
                yield str(number), line.rstrip("\r\n")
        return
    for example in iter_examples(path, options, report):
        yield example.id if example.id is not None else str(example.line), example.text


def _complete_rows(path: Path, csv_output: bool) -> int:
    """Rows already written to ``path``; a partly written last row is cut off first.

    JSONL escapes newlines, so a row is a line. A CSV field may hold a newline (an id
    with one, quoted), so CSV rows are counted as the csv module parses them; a row is
    complete when it ends at a newline outside quotes.
    """
    if not path.exists():
        return 0
    data = path.read_bytes()
    if csv_output:
        end, rows = _complete_csv(data)
    else:
        end = data.rfind(b"\n") + 1  # everything after the last newline is a torn row
        rows = data[:end].count(b"\n")
    if end < len(data):
        with path.open("rb+") as handle:
            handle.truncate(end)
    return max(rows - 1, 0) if csv_output else rows  # less the CSV header


def _complete_csv(data: bytes) -> tuple[int, int]:
    """(bytes, records) of the complete CSV records at the start of ``data``."""
    text = data.decode("utf-8", errors="surrogateescape")  # bytes back exactly, torn or not
    parts = text.split("\n")  # not splitlines(): a field may hold \u2028 and the like
    lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    fed = {"chars": 0, "last": ""}

    def feed():
        for line in lines:
            fed["chars"] += len(line)
            fed["last"] = line
            yield line

    end = rows = 0
    reader = csv.reader(feed(), strict=True)
    while True:
        try:
            next(reader)
        except (StopIteration, csv.Error):  # csv.Error: the file ends inside quotes
            break
        if not fed["last"].endswith("\n"):
            break  # the last record lacks its newline: torn
        end, rows = fed["chars"], rows + 1
    return len(text[:end].encode("utf-8", errors="surrogateescape")), rows


def score_model_file(
    model_dir: str | Path,
    input_path: str,
    output: str | None,
    *,
    shard: str | None = None,
    **options,
) -> ScoreSummary:
    """``textcnn score``: load the text model of ``model_dir`` and :func:`score_file`.

    ``shard`` is ``K/N``; under torchrun without one, this process's rank is the shard and
    it writes ``OUTPUT`` with ``.part-K-of-N`` before its extension."""
    from ..loading import load
    from ..training.distributed import World
    from ..training.launch import parse_shard, rank_output

    where = parse_shard(shard) if shard else None
    world = World.from_env()
    if where is None and world.under_torchrun:
        if output is None:
            raise ValueError("under torchrun every rank writes its own part: pass --output")
        where, output = (world.rank, world.size), str(rank_output(output, world))
    classifier = load(model_dir)
    if not isinstance(classifier, TextClassifier):
        raise ValueError(f"{model_dir}: an image model; `textcnn score` scores text files")
    return score_file(classifier, input_path, output, shard=where, **options)


def score_file(
    classifier: TextClassifier,
    input_path: str,
    output: str | None = None,
    *,
    input_format: str | None = None,
    text_field: str = "text",
    id_field: str | None = None,
    all_scores: bool = False,
    chunk_size: int = 8192,
    resume: bool = False,
    skip_bad_rows: bool = False,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    min_score: float | None = None,
) -> ScoreSummary:
    """Score every text of ``input_path`` ("-": stdin) into ``output`` (None: stdout).

    ``shard=(k, n)`` scores only shard k of n: the blocks of :data:`SHARD_ROWS` input rows
    whose number is k modulo n, so n shards cover every row exactly once; each output row
    then starts with its input row number, and :func:`merge_shards` restores the order."""
    if shard is not None and not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ValueError(f"--shard K/N needs 0 <= K < N, got {shard[0]}/{shard[1]}")
    fmt = _input_format(input_path, input_format)
    options = ReaderOptions(text_field, None, skip_bad_rows, fmt, id_field)
    if input_path != "-" and not Path(input_path).exists():
        raise ValueError(f"{input_path}: no such file")
    csv_output = output is not None and Path(output).suffix.lower() in (".csv", ".tsv")
    summary = ScoreSummary()
    if resume:
        if output is None:
            raise ValueError("--resume needs an output file (-o)")
        summary.resumed_after = _complete_rows(Path(output), csv_output)
    elif output is not None and Path(output).exists() and Path(output).stat().st_size:
        raise ValueError(f"{output} exists; pass --resume to continue it or remove it first")
    if shard is not None and output is not None:
        _shard_record(output).unlink(missing_ok=True)  # finished again only at the end
    rows = enumerate(_rows(input_path, options, summary.read))  # (row number, (id, text))
    if shard is not None:
        k, n = shard
        rows = (row for row in rows if row[0] // SHARD_ROWS % n == k)
    rows = islice(rows, summary.resumed_after, None)
    started = time.perf_counter()
    stdout = output is None
    handle = sys.stdout if stdout else open(output, "a", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        card = classifier.card
        writer = ScoreWriter(
            handle,
            csv_output,
            classifier.labels,
            all_scores,
            header=summary.resumed_after == 0,
            numbered=shard is not None,
            multi_label=classifier.multi_label,
            separator=card.label_separator if card is not None else ",",
            min_score=min_score,
        )
        bar = tqdm(
            unit="rows",
            initial=summary.resumed_after,
            disable=None if progress else True,
            desc="scoring",
            file=sys.stderr,
        )

        def write(chunk, encoded, scoring) -> None:
            probs = scoring.result()
            rows_out = [(number, row_id) for number, (row_id, _) in chunk]
            given = writer.write(rows_out, probs, encoded.truncated, classifier.given(probs))
            summary.labels.update(label for labels in given for label in labels)
            summary.abstained += sum(not labels for labels in given)
            handle.flush()  # a chunk is on disk before the next one is written
            summary.rows += len(chunk)
            bar.update(len(chunk))

        # A pipeline: the network scores a chunk on a thread of its own (the compiled
        # forward pass releases the GIL) while this one writes the chunk before and reads
        # and tokenizes the chunk after; rows are still written in order, chunk by chunk.
        # The rows' tuples and strings make no cycles: with the collector paused they are
        # freed as before, without the collections that took 6% of a run's CPU.
        with (
            collection_paused(),
            ThreadPoolExecutor(1, thread_name_prefix="textcnn-score") as network,
        ):
            pending = None
            try:
                while chunk := list(islice(rows, chunk_size)):
                    encoded = classifier.encode([text for _, (_, text) in chunk])
                    scoring = network.submit(classifier.predict_proba, encoded)
                    if pending is not None:
                        done, pending = pending, None
                        write(*done)
                    pending = (chunk, encoded, scoring)
            finally:  # also when the next chunk could not be read: what was scored is kept
                if pending is not None:
                    write(*pending)
        bar.close()
    finally:
        if handle is not sys.stdout:
            handle.close()
    if shard is not None and output is not None:  # this part is complete: merge checks it
        write_json(
            _shard_record(output),
            {"shard": shard[0], "of": shard[1], "rows": summary.resumed_after + summary.rows},
        )
    summary.seconds = time.perf_counter() - started
    return summary


def _shard_record(output: str | Path) -> Path:
    return Path(f"{output}.shard.json")


def merge_shards(output: str, parts: Sequence[str]) -> int:
    """Merge the outputs of ``score --shard K/N`` (JSONL or CSV, as ``output``) into the
    single-process output, in input order; returns the rows written. Parts that overlap
    or leave a gap are refused, and ``output`` is written whole or not at all."""
    csv_output = Path(output).suffix.lower() in (".csv", ".tsv")
    if Path(output).exists():
        raise ValueError(f"{output} exists; remove it or choose another output")
    for part in parts:
        if not Path(part).is_file():
            raise ValueError(f"{part}: no such file")
        if (Path(part).suffix.lower() in (".csv", ".tsv")) != csv_output:
            raise ValueError(f"{part}: not the same format (CSV or JSONL) as {output}")
    records = []
    for part in parts:
        if not _shard_record(part).is_file():
            raise ValueError(
                f"{part}: no {_shard_record(part).name}: not a finished --shard run "
                "(resume it with --resume)"
            )
        records.append(read_json(_shard_record(part)))
    count = records[0]["of"]
    shards = sorted(r["shard"] for r in records)
    if any(r["of"] != count for r in records) or shards != list(range(count)):
        given = ", ".join(f"{r['shard']}/{r['of']}" for r in records)
        raise ValueError(
            f"shards {given} given: merge needs each of 0/{count} .. "
            f"{count - 1}/{count} exactly once"
        )
    streams = [_numbered_rows(Path(part), csv_output) for part in parts]
    headers = [next(stream) for stream in streams]
    if len(set(map(tuple, headers))) > 1:
        raise ValueError("the parts have different columns; they come from different runs")
    expected = 0
    with atomic_file(Path(output)) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = CsvRows(handle) if csv_output else None
        if writer and headers[0]:
            writer.writerows([headers[0]])
        for number, row in heapq.merge(*streams, key=lambda item: item[0]):
            if number != expected:
                problem = "appears twice" if number < expected else f"to {number - 1} are missing"
                first = number if number < expected else expected
                raise ValueError(f"row {first} {problem}: the parts overlap or leave a gap")
            if writer:
                writer.writerows([row])
            else:
                handle.write(row)
            expected += 1
        if expected != sum(r["rows"] for r in records):
            raise ValueError("the parts hold fewer rows than their runs wrote; score them again")
    return expected


def _numbered_rows(path: Path, csv_output: bool) -> Iterator:
    """First the header (CSV columns without "row"; [] for JSONL), then (row number, row
    without its number) for every row of a shard's output."""
    with path.open(encoding="utf-8", newline="") as handle:
        if csv_output:
            reader = csv.reader(handle, strict=True)
            try:
                header = next(reader, [])
                if header[:1] != ["row"]:
                    raise ValueError(f"{path}: no row column; score it with --shard K/N")
                yield header[1:]
                for record in reader:
                    if not record or not record[0].isdigit():
                        raise ValueError(
                            f"{path}:{reader.line_num}: not a row of --shard output; "
                            "score that shard again"
                        )
                    yield int(record[0]), record[1:]
            except csv.Error as error:
                raise ValueError(f"{path}:{reader.line_num}: damaged CSV ({error})") from None
            return
        yield []
        for number, line in enumerate(handle, start=1):
            match = JSON_ROW.match(line)
            if match is None or not line.endswith("\n"):
                raise ValueError(f"{path}:{number}: not a row of --shard output")
            yield int(match.group(1)), "{" + line[match.end() :]
