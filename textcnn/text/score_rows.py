"""The rows ``textcnn score`` writes: JSONL built by hand (``json.dumps`` per row was a third
of a run) or CSV whose every line break is quoted."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import TextIO

import torch


class ScoreWriter:
    """Rows of scores as JSONL or CSV, a chunk at a time, from the probability arrays. With
    ``numbered`` (a shard's output) each row starts with its input row number, for merge.

    A row holds the id, the label and its score (every label's with ``all_scores``), and
    whether the text was truncated; a multi-label model's rows also hold every label it
    assigns (a JSON list, or one CSV column joined by ``separator``); with ``min_score``,
    a row whose top score is under it has no label and says it abstained."""

    def __init__(
        self,
        handle: TextIO,
        csv_output: bool,
        labels: list[str],
        all_scores: bool,
        header: bool,
        numbered: bool = False,
        multi_label: bool = False,
        separator: str = ",",
        min_score: float | None = None,
    ) -> None:
        self.handle = handle
        self.labels = labels
        self.all_scores = all_scores
        self.numbered = numbered
        self.multi_label, self.separator, self.min_score = multi_label, separator, min_score
        self.csv = CsvRows(handle) if csv_output else None
        self.json_labels = [encode_basestring(label) for label in labels]  # quoted, once
        if self.csv and header:
            extra = [f"score_{label}" for label in labels] if all_scores else []
            lead = ["row"] if numbered else []
            given = ["labels"] if multi_label else []
            abstained = ["abstained"] if min_score is not None else []
            header_row = [*lead, "id", "label", *given, "score", "truncated", *abstained, *extra]
            self.csv.writerows([header_row])

    def write(
        self,
        rows: Sequence[tuple[int, str]],
        probs: torch.Tensor,
        truncated: list[bool],
        given: list[list[int]],
    ) -> list[list[str]]:
        """Write one line per (row number, id), ``given`` the classes each text is given,
        most probable first; returns the labels each row was given (none if it abstained)."""
        scores = probs.max(dim=1).values.tolist()
        every = probs.tolist() if self.all_scores else None
        abstained = [self.min_score is not None and p < self.min_score for p in scores]
        if self.csv:
            self.csv.writerows(self._csv(rows, scores, truncated, given, abstained, every))
        else:
            self.handle.write("".join(self._json(rows, scores, truncated, given, abstained, every)))
        labels = self.labels
        return [
            [] if out else [labels[c] for c in gave]
            for gave, out in zip(given, abstained, strict=True)
        ]

    def _csv(self, rows, scores, truncated, given, abstained, every):
        labels = self.labels
        for n, ((number, row_id), p, cut, gave, out) in enumerate(
            zip(rows, scores, truncated, given, abstained, strict=True)
        ):
            label = "" if out or not gave else labels[gave[0]]
            row = ([number] if self.numbered else []) + [row_id, label]
            if self.multi_label:
                row.append(self.separator.join(labels[c] for c in gave))
            row += [f"{p:.6f}", int(cut)]
            if self.min_score is not None:
                row.append(int(out))
            yield row + ([f"{q:.6f}" for q in every[n]] if every else [])

    def _json(self, rows, scores, truncated, given, abstained, every):
        quoted = self.json_labels  # JSON by hand: json.dumps per row was a third of the run
        for n, ((number, row_id), p, cut, gave, out) in enumerate(
            zip(rows, scores, truncated, given, abstained, strict=True)
        ):
            line = f'{{"row": {number}, ' if self.numbered else "{"
            label = "null" if out or not gave else quoted[gave[0]]
            line += f'"id": {encode_basestring(row_id)}, "label": {label}, '
            if self.multi_label:
                line += f'"labels": [{", ".join(quoted[c] for c in gave)}], '
            line += f'"score": {round(p, 6)!r}'
            if cut:
                line += ', "truncated": true'
            if out:
                line += ', "abstained": true'
            if every:
                pairs = ", ".join(
                    f"{q}: {round(x, 6)!r}" for q, x in zip(quoted, every[n], strict=True)
                )
                line += f', "scores": {{{pairs}}}'
            yield line + "}\n"


class CsvRows:
    """CSV rows ending in ``\n``, every field that holds a line break quoted. Python's csv
    module quotes a field with ``\n`` but not one with a lone ``\r`` when lines end in
    ``\n``; a reader then splits the row there (an id holding ``\r`` made one file read
    as 228,573 rows instead of 200,001). Rows with ``\r`` anywhere are written with every
    field quoted; the rest as usual."""

    def __init__(self, handle: TextIO) -> None:
        self.plain = csv.writer(handle, lineterminator="\n")
        self.quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerows(self, rows) -> None:
        rows = list(rows)
        if not any("\r" in field for row in rows for field in row if isinstance(field, str)):
            self.plain.writerows(rows)
            return
        for row in rows:
            carriage = any("\r" in field for field in row if isinstance(field, str))
            (self.quoted if carriage else self.plain).writerow(row)
