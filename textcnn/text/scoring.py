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
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from json.encoder import encode_basestring
from pathlib import Path
from typing import TextIO

import torch
from tqdm.auto import tqdm

from .classifier import TextClassifier
from .corpora import ReaderOptions, ReadReport, detect_format, iter_examples


@dataclass
class ScoreSummary:
    rows: int = 0  # rows written by this run
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
    if path == "-":  # standard input: one text per line
        for number, line in enumerate(sys.stdin, start=1):
            if line.strip():
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


class _Writer:
    """Rows of scores as JSONL or CSV, a chunk at a time, from the probability arrays."""

    def __init__(
        self, handle: TextIO, csv_output: bool, labels: list[str], all_scores: bool, header: bool
    ) -> None:
        self.handle = handle
        self.labels = labels
        self.all_scores = all_scores
        self.csv = csv.writer(handle, lineterminator="\n") if csv_output else None
        self.json_labels = [encode_basestring(label) for label in labels]  # quoted, once
        if self.csv and header:
            extra = [f"score_{label}" for label in labels] if all_scores else []
            self.csv.writerow(["id", "label", "score", "truncated", *extra])

    def write(self, ids: Sequence[str], probs: torch.Tensor, truncated: list[bool]) -> list[int]:
        """Write one row per id; returns the index of each row's label."""
        scores, best = (x.tolist() for x in probs.max(dim=1))
        every = probs.tolist() if self.all_scores else None
        labels = self.labels
        if self.csv:
            self.csv.writerows(
                [row_id, labels[i], f"{p:.6f}", int(cut)]
                + ([f"{q:.6f}" for q in every[n]] if every else [])
                for n, (row_id, i, p, cut) in enumerate(
                    zip(ids, best, scores, truncated, strict=True)
                )
            )
            return best
        lines = []  # JSON by hand: json.dumps per row was a third of the run
        quoted = self.json_labels
        for n, (row_id, i, p, cut) in enumerate(zip(ids, best, scores, truncated, strict=True)):
            line = f'{{"id": {encode_basestring(row_id)}, "label": {quoted[i]}, '
            line += f'"score": {round(p, 6)!r}'
            if cut:
                line += ', "truncated": true'
            if every:
                pairs = ", ".join(
                    f"{q}: {round(x, 6)!r}" for q, x in zip(quoted, every[n], strict=True)
                )
                line += f', "scores": {{{pairs}}}'
            lines.append(line + "}\n")
        self.handle.write("".join(lines))
        return best


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
) -> ScoreSummary:
    """Score every text of ``input_path`` ("-": stdin) into ``output`` (None: stdout)."""
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
    rows = islice(_rows(input_path, options, summary.read), summary.resumed_after, None)
    started = time.perf_counter()
    stdout = output is None
    handle = sys.stdout if stdout else open(output, "a", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        writer = _Writer(
            handle, csv_output, classifier.labels, all_scores, header=summary.resumed_after == 0
        )
        bar = tqdm(
            unit="rows",
            initial=summary.resumed_after,
            disable=None if progress else True,
            desc="scoring",
            file=sys.stderr,
        )
        while chunk := list(islice(rows, chunk_size)):
            row_ids, texts = zip(*chunk, strict=True)
            token_ids, truncated = classifier.token_ids(texts)
            best = writer.write(row_ids, classifier.probabilities_of(token_ids), truncated)
            summary.labels.update(classifier.labels[i] for i in best)
            handle.flush()  # a chunk is on disk before the next one starts
            summary.rows += len(chunk)
            bar.update(len(chunk))
        bar.close()
    finally:
        if handle is not sys.stdout:
            handle.close()
    summary.seconds = time.perf_counter() - started
    return summary
