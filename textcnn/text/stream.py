"""Corpora larger than memory: a CSV/TSV/JSONL/fastText file read as byte blocks.

One sequential pass, the scan (:func:`scan_corpus`), checks every row (a bad row stops
it with its ``file:line``, or is counted with ``--skip-bad-rows``) and keeps only what
training needs before it starts: the labels and their counts, the training rows in each
block, a sample of texts for the tokenizer (and word vectors), and
the dev split. After it, training reads blocks (:meth:`StreamedCorpus.rows`): each rank of a
torchrun job its own, from any byte offset, since a row belongs to the block its first
byte is in.

The dev split is held out by a hash of each row's text, so it is the same on every run and
every rank, and a text that occurs twice is on one side only: rows whose hash (a number in
[0, 1)) is under ``dev_fraction`` are dev, at most :data:`DEV_MAX` of them (the lowest
hashes; the bound then moves down).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from .corpora import Corpus, ReaderOptions, ReadReport, detect_format, line_parser
from .row_labels import BadRow

log = logging.getLogger(__name__)

MAX_BLOCK_BYTES = 1 << 20  # the unit of reading, dealt to ranks and shuffled: at most
BLOCKS = 1024  # ... and about this many of them in a smaller file (4 KB at least)
DEV_MAX = 20_000  # dev rows held out of a streamed corpus at most
SAMPLE_ROWS = 200_000  # training texts the tokenizer (and word vectors) learn from


def row_hash(text: str) -> float:
    """A number in [0, 1) that depends on the text only (not on the process, unlike hash())."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def block_bytes(size: int) -> int:
    """The block size of a file of ``size`` bytes."""
    return max(4096, min(MAX_BLOCK_BYTES, size // BLOCKS))


def _lines(handle, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of every line that starts in [start, end) of a binary file."""
    if start > 0:
        handle.seek(start - 1)
        if handle.read(1) != b"\n":
            handle.readline()  # the rest of a line that started before ``start``
    else:
        handle.seek(0)
    offset = handle.tell()
    while offset < end:
        line = handle.readline()
        if not line:
            return
        yield offset, line
        offset += len(line)


@dataclass
class StreamedCorpus:
    """A training file too large to hold: what the scan found, and its rows on demand.

    ``texts`` is the tokenizer's sample, not every text; ``len()`` is the number of
    training rows (dev rows excluded)."""

    path: Path
    format: str
    options: ReaderOptions
    header: str | None  # a CSV/TSV file's first line
    sha256: str
    block_bytes: int
    counts: Counter  # training rows per label
    block_rows: list[int]  # training rows that start in each block
    dev_below: float  # a row whose hash is under this is a dev row
    texts: list[str]  # a uniform sample of training texts
    report: ReadReport = field(default_factory=ReadReport)
    multi_label: bool = False

    @property
    def source(self) -> str:
        return str(self.path)

    def __len__(self) -> int:
        return sum(self.block_rows)

    def label_names(self) -> list[str]:
        return sorted(self.counts)

    def fingerprint(self) -> str:
        return self.sha256

    def subset(self, indices: list[int]) -> Corpus:
        raise ValueError("a streamed corpus is read in blocks, not split by rows (--stream)")

    def parser(self):
        return line_parser(self.path, self.format, self.options, self.header)

    def rows(
        self, blocks: list[int], start: tuple[int, int] = (0, 0)
    ) -> Iterator[tuple[tuple[int, int], str, str]]:
        """(where the next row starts, text, label) of the training rows of ``blocks`` in
        that order, from ``start`` = (index in ``blocks``, byte offset); where the next row
        starts is such a pair too, to continue from. Bad rows (counted by the scan) and dev
        rows are left out."""
        parse = self.parser()
        with self.path.open("rb") as handle:
            for index in range(start[0], len(blocks)):
                first = blocks[index] * self.block_bytes
                begin = start[1] if index == start[0] and start[1] > first else first
                for offset, raw in _lines(handle, begin, first + self.block_bytes):
                    after = (index, offset + len(raw))
                    if offset == 0 and self.header is not None:
                        continue
                    try:
                        line = raw.decode("utf-8-sig" if offset == 0 else "utf-8")
                    except UnicodeDecodeError:
                        continue
                    if not line.strip():
                        continue
                    row = parse("", 0, line)
                    if isinstance(row, BadRow) or row_hash(row.text) < self.dev_below:
                        continue
                    yield after, row.text, row.label


def scan_corpus(
    path: str | Path, options: ReaderOptions, dev_fraction: float | None, seed: int
) -> tuple[StreamedCorpus, Corpus | None]:
    """One pass over ``path``: the streamed training corpus and, with ``dev_fraction``,
    its dev rows (held out by hash, see the module's note) as a corpus in memory."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: a folder; --stream reads one CSV, TSV, JSONL or fastText file")
    if not path.is_file():
        raise ValueError(f"{path}: no such file (--stream reads one file)")
    fmt = options.format or detect_format(path)
    if options.multi_label:
        raise ValueError("--stream trains single-label corpora; drop --stream or --multi-label")
    options = replace(options, multi_label=False)  # a label with the separator is one label
    report, counts = ReadReport(), Counter()
    rows_per_block: list[int] = []
    # dev: the DEV_MAX rows of lowest hash under dev_fraction, in a heap of (-hash, line,
    # text, label, block); the lowest hash pushed out of it bounds dev from above
    heap: list[tuple[float, int, str, str, int]] = []
    dev_below = dev_fraction if dev_fraction is not None else 0.0
    sample: list[str] = []
    sampled = 0
    rng = random.Random(seed)
    digest = hashlib.sha256()
    size = block_bytes(path.stat().st_size)
    header = None
    parse = None
    with path.open("rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            digest.update(raw)
            here, offset = offset, offset + len(raw)
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                if number == 1 and fmt in ("csv", "tsv"):
                    message = f"{where}: the header is not UTF-8; re-save the file as UTF-8"
                    raise ValueError(message) from None
                row = BadRow(
                    where,
                    "undecodable bytes",
                    "bytes that are not UTF-8; re-save the file as UTF-8 or pass --skip-bad-rows",
                )
            else:
                if parse is None:
                    if fmt in ("csv", "tsv"):
                        header = line
                        parse = line_parser(path, fmt, options, header)
                        continue
                    parse = line_parser(path, fmt, options, None)
                if not line.strip():
                    continue
                row = parse(where, number, line)
            if isinstance(row, BadRow):
                if not options.skip_bad_rows:
                    raise row
                report.skipped[row.reason] += 1
                continue
            if not isinstance(row.label, str):
                raise ValueError(
                    f"{where}: several labels in one row; --stream trains single-label corpora"
                )
            report.rows += 1
            block = here // size
            rows_per_block.extend([0] * (block + 1 - len(rows_per_block)))
            rows_per_block[block] += 1
            counts[row.label] += 1
            h = row_hash(row.text)
            if h < dev_below:
                heapq.heappush(heap, (-h, number, row.text, row.label, block))
                if len(heap) > DEV_MAX:
                    dev_below = min(dev_below, -heapq.heappop(heap)[0])
            else:  # surely a training row: the sample draws from these (reservoir sampling)
                sampled += 1
                if len(sample) < SAMPLE_ROWS:
                    sample.append(row.text)
                elif (j := rng.randrange(sampled)) < SAMPLE_ROWS:
                    sample[j] = row.text
    if parse is None:
        raise ValueError(f"{path}: the file is empty")
    dev = None
    if dev_fraction is not None:
        held = sorted(entry[1:] for entry in heap if -entry[0] < dev_below)  # in file order
        for _, _, label, block in held:
            rows_per_block[block] -= 1
            counts[label] -= 1
        counts = +counts  # labels whose every row fell in dev are not trained on
        unknown = Counter(label for _, _, label, _ in held if label not in counts)
        if unknown:  # nor scored on dev (the rows stay out of training too)
            log.warning(
                "%d dev rows left out: their labels have no training rows (%s)",
                sum(unknown.values()),
                ", ".join(sorted(unknown)[:10]),
            )
        kept = [(text, label) for _, text, label, _ in held if label in counts]
        if not kept:
            raise ValueError(
                f"{path}: no dev rows held out (a dev fraction of {dev_fraction} of "
                f"{report.rows} rows); raise --dev-fraction or pass a dev file with --dev"
            )
        dev = Corpus([t for t, _ in kept], [label for _, label in kept], f"{path} (dev)")
    if report.skipped:
        log.warning("%s: skipped %s", path, dict(report.skipped))
    corpus = StreamedCorpus(
        path=path,
        format=fmt,
        options=options,
        header=header,
        sha256=digest.hexdigest(),
        block_bytes=size,
        counts=counts,
        block_rows=rows_per_block,
        dev_below=dev_below,
        texts=sample,
        report=report,
    )
    if not len(corpus):
        raise ValueError(f"{path}: no training rows")
    return corpus, dev
