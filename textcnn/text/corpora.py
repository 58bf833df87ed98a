"""Labelled corpora from CSV/TSV, JSONL, fastText files and class folders, read in one pass.

Every reader yields :class:`Example` rows and stops at the first bad row with a
message naming the file and line, unless ``skip_bad_rows`` is set, in which
case bad rows are skipped and counted in :class:`ReadReport`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import BinaryIO, TextIO, TypeVar

from .row_labels import BadRow, Label, labels_of
from .tokenizer import clean_text

T = TypeVar("T")

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "jsonl", "fasttext", "folder", "lines")
FASTTEXT_PREFIX = "__label__"
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Example:
    text: str
    label: Label | None  # None when the reader was asked for unlabelled texts
    line: int = 0  # line of the file where the row starts (0 for a document in a folder)
    id: str | None = None  # the id column/key when one was named (a folder: the file name)


@dataclass
class ReadReport:
    """What reading a corpus kept and dropped."""

    rows: int = 0
    skipped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "skipped": dict(self.skipped)}


@dataclass
class Corpus:
    """Labelled texts: one label each (strings), or with ``multi_label`` a tuple of labels
    each."""

    texts: list[str]
    labels: list[Label]
    source: str
    report: ReadReport = field(default_factory=ReadReport)
    multi_label: bool = False

    def __len__(self) -> int:
        return len(self.texts)

    def fingerprint(self) -> str:
        """sha256 of the texts and labels, in order: identifies the training data."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            label = "\x1f".join(label) if isinstance(label, tuple) else label
            digest.update(label.encode() + b"\t" + text.encode() + b"\n")
        return digest.hexdigest()

    def subset(self, indices: list[int]) -> Corpus:
        texts, labels = [self.texts[i] for i in indices], [self.labels[i] for i in indices]
        return Corpus(texts, labels, self.source, multi_label=self.multi_label)

    def label_names(self) -> list[str]:
        """Every label the corpus uses, sorted."""
        if self.multi_label:
            return sorted({label for labels in self.labels for label in labels})
        return sorted(set(self.labels))


@dataclass
class ReaderOptions:
    text_field: str = "text"  # column (CSV/TSV) or key (JSONL) holding the text
    label_field: str | None = "label"  # column or key holding the label; None: unlabelled
    skip_bad_rows: bool = False  # skip and count bad rows instead of stopping
    format: str | None = None  # csv|tsv|jsonl|fasttext|folder|lines; None: from the name
    id_field: str | None = None  # column or key holding a row id (scoring)
    # several labels per row: True, False, or None to detect (a row with several labels
    # makes the corpus multi-label); labels are joined by the separator in a CSV/TSV/JSONL
    # label field (a JSONL list works too), and are several __label__ tags in fastText
    multi_label: bool | None = None
    label_separator: str = ","


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    by_suffix = {
        ".csv": "csv",
        ".tsv": "tsv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".ft": "fasttext",
        ".fasttext": "fasttext",
        ".txt": "fasttext",
    }
    if suffix not in by_suffix:
        raise ValueError(
            f"{path}: cannot tell the format from the name; pass --format, one of {FORMATS}"
        )
    return by_suffix[suffix]


def _check(
    where: str, line: int, text, label, options: ReaderOptions, id_=None
) -> Example | BadRow:
    if text is None or not str(text).strip():
        return BadRow(where, "empty text", "empty text; fix the row or pass --skip-bad-rows")
    if options.label_field is None:
        label = None
    elif label is None:
        return BadRow(where, "missing label", "missing label; fix the row or pass --skip-bad-rows")
    else:
        label = labels_of(where, label, options.multi_label, options.label_separator)
        if isinstance(label, BadRow):
            return label
    # JSONL may escape a lone surrogate; it could not be written back out as UTF-8
    row_id = None if id_ is None else clean_text(str(id_))
    return Example(clean_text(str(text)), label, line, row_id)


def _shown(names, limit: int = 200) -> str:
    """Column names or keys for a message, cut to ``limit`` characters (a header line can
    be a whole file's worth of text)."""
    text = ", ".join(str(name) for name in names)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _required_fields(options: ReaderOptions) -> list[tuple[str, str]]:
    """(name, flag) of every column/key the rows must have."""
    fields = [(options.text_field, "--text-field")]
    if options.label_field is not None:
        fields.append((options.label_field, "--label-field"))
    if options.id_field is not None:
        fields.append((options.id_field, "--id-field"))
    return fields


def _decoded_lines(path: Path, bad: list[int]) -> Iterator[str]:
    """Lines of a UTF-8 file; an undecodable line is recorded in ``bad`` and replaced by ''."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                bad.append(number)
                yield "\n"


def _undecodable(where: str) -> BadRow:
    return BadRow(
        where,
        "undecodable bytes",
        "bytes that are not UTF-8; re-save the file as UTF-8 or pass --skip-bad-rows",
    )


def _columns(path: Path, header: list[str], options: ReaderOptions) -> dict[str, int]:
    """Where each column the rows must have is in ``header``: named once, or an error."""
    for name, flag in _required_fields(options):
        if name not in header:
            raise ValueError(
                f"{path}:1: no column {name!r} in the header (columns: {_shown(header)}); "
                f"name the right one with {flag}"
            )
        if header.count(name) > 1:
            raise ValueError(
                f"{path}:1: the header has {header.count(name)} columns named {name!r}; "
                "rename all but one, or name another column with " + flag
            )
    return {name: header.index(name) for name, _ in _required_fields(options)}


def _fields_row(
    where: str, line: int, row: list[str], width: int, columns: dict, options: ReaderOptions
) -> Example | BadRow:
    """The example of a CSV/TSV row of ``width`` fields (the header's), or why it is bad."""
    if len(row) != width:
        return BadRow(
            where,
            "wrong number of fields",
            f"{len(row)} fields where the header has {width}; "
            "quote fields that contain the delimiter or pass --skip-bad-rows",
        )
    values = {name: row[at] for name, at in columns.items()}
    return _check(
        where,
        line,
        values[options.text_field],
        values.get(options.label_field),
        options,
        values.get(options.id_field),
    )


def _read_delimited(
    path: Path, options: ReaderOptions, delimiter: str
) -> Iterator[Example | BadRow]:
    bad_lines: list[int] = []
    # strict: a quote that is never closed, or text after a closing quote, is an error
    # instead of a field that silently swallows the rows after it
    reader = csv.reader(_decoded_lines(path, bad_lines), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise ValueError(f"{path}:1: the header is not valid CSV ({error})") from None
    if header is None:
        raise ValueError(f"{path}: the file is empty; it needs a header row and data rows")
    header = [h.strip() for h in header]
    columns = _columns(path, header, options)
    line = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            start, line = line + 1, reader.line_num
            yield BadRow(
                f"{path}:{start}",
                "bad quoting",
                f"a quoted field is not closed, or has text after its closing quote ({error}); "
                "fix the quotes or pass --skip-bad-rows",
            )
            continue
        start, line = line + 1, reader.line_num  # a quoted field may span several lines
        where = f"{path}:{start}"
        if bad_lines:
            yield _undecodable(f"{path}:{bad_lines.pop()}")
            continue
        if not row:
            continue  # blank line
        yield _fields_row(where, start, row, len(header), columns, options)


def numbered_lines(handle: BinaryIO | TextIO, where: str) -> Iterator[tuple[int, str] | BadRow]:
    """(line number, line) of every non-blank line of a UTF-8 stream (or of a text stream,
    such as a ``sys.stdin`` a caller replaced), read a block of lines at a time (scoring
    reads millions); an undecodable line as a BadRow at ``where``."""
    number = 0
    while block := handle.readlines(1 << 20):
        for raw in block:
            number += 1
            if isinstance(raw, str):
                line = raw
            else:
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    yield _undecodable(f"{where}:{number}")
                    continue
            if line.strip():
                yield number, line


def _numbered_lines(path: Path) -> Iterator[tuple[int, str] | BadRow]:
    """:func:`numbered_lines` of the file at ``path``."""
    with path.open("rb") as handle:
        yield from numbered_lines(handle, str(path))


def _per_line(path: Path, parse) -> Iterator[Example | BadRow]:
    """``parse(where, number, line)`` of every non-blank line; undecodable lines as BadRows."""
    for item in _numbered_lines(path):
        yield item if isinstance(item, BadRow) else parse(f"{path}:{item[0]}", *item)


def _jsonl_row(where: str, number: int, line: str, options: ReaderOptions) -> Example | BadRow:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return BadRow(where, "bad json", f"not valid JSON ({error.msg})")
    if not isinstance(record, dict):
        return BadRow(where, "bad json", "each line must be a JSON object")
    missing = [(name, flag) for name, flag in _required_fields(options) if name not in record]
    if missing:
        name, flag = missing[0]
        return BadRow(
            where,
            f"missing key {name!r}",
            f"no key {name!r} (keys: {_shown(record)}); name it with {flag}",
        )
    label = record.get(options.label_field) if options.label_field else None
    return _check(
        where,
        number,
        record[options.text_field],
        label,
        options,
        record.get(options.id_field),
    )


def _fasttext_row(where: str, number: int, line: str, options: ReaderOptions) -> Example | BadRow:
    labels, words = [], line.split()
    while words and words[0].startswith(FASTTEXT_PREFIX):
        labels.append(words.pop(0)[len(FASTTEXT_PREFIX) :])
    if not labels and options.label_field is not None:
        return BadRow(where, "missing label", f"no label; lines start with {FASTTEXT_PREFIX}LABEL")
    # several tags: a multi-label row (a list: the separator does not split a tag)
    value = labels if options.multi_label is not False or len(labels) > 1 else labels[0]
    return _check(where, number, " ".join(words), value if labels else None, options)


def _read_jsonl(path: Path, options: ReaderOptions) -> Iterator[Example | BadRow]:
    return _per_line(path, lambda where, number, line: _jsonl_row(where, number, line, options))


def _read_fasttext(path: Path, options: ReaderOptions) -> Iterator[Example | BadRow]:
    return _per_line(path, lambda where, number, line: _fasttext_row(where, number, line, options))


def _read_lines(path: Path, options: ReaderOptions) -> Iterator[Example | BadRow]:
    """One unlabelled text per line; blank lines are skipped (the row id is the line number)."""
    for item in _numbered_lines(path):  # no parser call per line: scoring reads millions
        yield item if isinstance(item, BadRow) else Example(item[1].rstrip("\r\n"), None, item[0])


def _read_folder(path: Path, options: ReaderOptions) -> Iterator[Example | BadRow]:
    options = replace(options, multi_label=False)  # a folder per class: one label each
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(
            f"{path}: no class folders; put each class's files in a folder named after it"
        )
    for folder in classes:
        for file in sorted(
            p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
        ):
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                yield BadRow(str(file), "undecodable bytes", "not UTF-8 text; re-save it as UTF-8")
                continue
            yield _check(str(file), 0, text, folder.name, options, str(file.relative_to(path)))


def line_parser(path: Path, fmt: str, options: ReaderOptions, header: str | None):
    """``parse(where, number, line) -> Example | BadRow`` for a format with one row per
    line (CSV/TSV, JSONL, fastText), for readers that jump into the middle of a file (see
    :mod:`.stream`); ``header`` is a CSV/TSV file's first line. A CSV/TSV row is then one
    line: a quoted field cannot hold a line break."""
    if fmt in ("jsonl", "fasttext"):
        row = _jsonl_row if fmt == "jsonl" else _fasttext_row
        return lambda where, number, line: row(where, number, line, options)
    if fmt not in ("csv", "tsv"):
        raise ValueError(f"{path}: --stream reads CSV, TSV, JSONL and fastText files, not {fmt}")
    delimiter = "," if fmt == "csv" else "\t"
    names = [
        h.strip() for h in next(csv.reader([(header or "").rstrip("\r\n")], delimiter=delimiter))
    ]
    columns = _columns(path, names, options)

    def parse(where: str, number: int, line: str) -> Example | BadRow:
        try:
            row = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter, strict=True))
        except (csv.Error, StopIteration) as error:
            return BadRow(
                where,
                "bad quoting",
                f"not one valid CSV row on one line ({error}); --stream reads a row per "
                "line: fix the quotes or pass --skip-bad-rows",
            )
        return _fields_row(where, number, row, len(names), columns, options)

    return parse


READERS = {
    "csv": partial(_read_delimited, delimiter=","),
    "tsv": partial(_read_delimited, delimiter="\t"),
    "jsonl": _read_jsonl,
    "fasttext": _read_fasttext,
    "folder": _read_folder,
    "lines": _read_lines,
}


def iter_examples(
    path: str | Path, options: ReaderOptions | None = None, report: ReadReport | None = None
) -> Iterator[Example]:
    """Stream the examples of ``path``; bad rows raise ``ValueError`` or are counted and skipped."""
    options = options or ReaderOptions()
    report = report if report is not None else ReadReport()
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    fmt = options.format or detect_format(path)
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    yield from kept_rows(READERS[fmt](path, options), options, report)


def kept_rows(
    rows: Iterable[T | BadRow], options: ReaderOptions, report: ReadReport
) -> Iterator[T]:
    """``rows`` but the bad ones, which raise, or with ``skip_bad_rows`` are counted."""
    for row in rows:
        if isinstance(row, BadRow):
            if not options.skip_bad_rows:
                raise row
            report.skipped[row.reason] += 1
            continue
        report.rows += 1
        yield row


def read_corpus(path: str | Path, options: ReaderOptions | None = None) -> Corpus:
    """Read a whole labelled file (or class folder) into memory, in one pass."""
    options = options or ReaderOptions()
    report = ReadReport()
    texts, labels = [], []
    for example in iter_examples(path, options, report):
        texts.append(example.text)
        labels.append(example.label)
    if not texts:
        raise ValueError(f"{path}: no usable rows")
    if report.skipped:
        log.warning(
            "%s: skipped %d bad rows %s", path, sum(report.skipped.values()), dict(report.skipped)
        )
    several = sum(isinstance(label, tuple) and len(label) > 1 for label in labels)
    multi = options.multi_label if options.multi_label is not None else several > 0
    if multi and options.multi_label is None:
        log.info("%s: multi-label (%d of %d rows have several labels)", path, several, len(labels))
    if multi:
        labels = [label if isinstance(label, tuple) else (label,) for label in labels]
    else:
        labels = [label[0] if isinstance(label, tuple) else label for label in labels]
    return Corpus(texts, labels, str(path), report, multi)
