"""The benchmark corpora (not in the repository) parse completely with the TSV reader."""

import pytest

from tests.conftest import DATA_DIR
from textcnn.text.corpora import read_corpus

DATA = DATA_DIR
ROWS = {
    "mr/all.tsv": 10_662,
    "subj/all.tsv": 10_000,
    "sst2/train.tsv": 6_920,
    "sst2/test.tsv": 1_821,
    "trec/train.tsv": 5_452,
    "trec/test.tsv": 500,
}


@pytest.mark.skipif(
    not DATA.is_dir(), reason=f"benchmark data not found at {DATA}; set TEXTCNN_DATA_DIR"
)
@pytest.mark.parametrize(("name", "rows"), ROWS.items())
def test_benchmark_file_parses(name, rows):
    corpus = read_corpus(DATA / name)
    assert len(corpus) == rows
    assert not corpus.report.skipped
