from collections import Counter

import pytest

from textcnn.text.splits import stratified_folds, stratified_split

LABELS = ["a"] * 80 + ["b"] * 20


def test_dev_split_is_stratified_and_seeded():
    kept, held = stratified_split(LABELS, 0.1, seed=3)
    assert Counter(LABELS[i] for i in held) == {"a": 8, "b": 2}
    assert sorted(kept + held) == list(range(100))
    assert stratified_split(LABELS, 0.1, seed=3) == (kept, held)
    assert stratified_split(LABELS, 0.1, seed=4) != (kept, held)


def test_folds_partition_the_data_with_the_same_label_mix():
    folds = stratified_folds(LABELS, 10)
    assert sorted(i for fold in folds for i in fold) == list(range(100))
    for fold in folds:
        assert Counter(LABELS[i] for i in fold) == {"a": 8, "b": 2}


def test_bad_arguments():
    with pytest.raises(ValueError):
        stratified_split(LABELS, 1.5)
    with pytest.raises(ValueError):
        stratified_folds(LABELS, 1)
