import json

import pytest

from textcnn.text.corpora import ReaderOptions, read_corpus


def write(path, content, mode="w"):
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_csv_with_quotes_and_configurable_columns(tmp_path):
    path = write(
        tmp_path / "reviews.csv", 'id,review,stars\n1,"great, really ""great""",pos\n2,meh,neg\n'
    )
    corpus = read_corpus(path, ReaderOptions(text_field="review", label_field="stars"))
    assert corpus.texts == ['great, really "great"', "meh"]
    assert corpus.labels == ["pos", "neg"]


def test_tsv_jsonl_fasttext_and_folder(tmp_path):
    tsv = write(tmp_path / "a.tsv", "label\ttext\npos\tnice one\nneg\tnope\n")
    jsonl = write(
        tmp_path / "a.jsonl",
        '{"text": "nice one", "label": "pos"}\n\n{"text": "nope", "label": "neg"}\n',
    )
    fasttext = write(tmp_path / "a.txt", "__label__pos nice one\n__label__neg nope\n")
    folder = tmp_path / "docs"
    (folder / "pos").mkdir(parents=True)
    (folder / "neg").mkdir()
    write(folder / "pos" / "1.txt", "nice one")
    write(folder / "neg" / "1.txt", "nope")
    for path in (tsv, jsonl, fasttext):
        corpus = read_corpus(path)
        assert list(zip(corpus.texts, corpus.labels)) == [("nice one", "pos"), ("nope", "neg")], (
            path
        )
    corpus = read_corpus(folder)
    assert sorted(zip(corpus.texts, corpus.labels)) == [("nice one", "pos"), ("nope", "neg")]


def test_jsonl_with_other_keys(tmp_path):
    path = write(tmp_path / "a.jsonl", json.dumps({"body": "hello", "y": 1}) + "\n")
    corpus = read_corpus(path, ReaderOptions(text_field="body", label_field="y"))
    assert corpus.labels == ["1"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.tsv", "label\tbody\npos\thi\n", r"a.tsv:1: no column 'text'.*--text-field"),
        ("a.tsv", "label\ttext\npos\thi\nneg\t  \n", r"a.tsv:3: empty text.*--skip-bad-rows"),
        ("a.tsv", "label\ttext\npos\thi\n\tlonely\n", r"a.tsv:3: missing label"),
        ("a.tsv", "label\ttext\npos\thi\tthere\n", r"a.tsv:2: 3 fields where the header has 2"),
        ("a.jsonl", '{"text": "hi", "label": "a"}\n{"text": "hi"\n', r"a.jsonl:2: not valid JSON"),
        ("a.jsonl", '{"text": "hi"}\n', r"a.jsonl:1: no key 'label'"),
        ("a.txt", "__label__a hi\njust text\n", r"a.txt:2: no label"),
        ("a.txt", "__label__a\n", r"a.txt:1: empty text"),
        ("a.tsv", "", r"a.tsv: the file is empty"),
        ("a.xml", "<a/>", r"cannot tell the format.*--format"),
        # a quote never closed would swallow the rows after it
        (
            "a.csv",
            'label,text\npos,"great film\nneg,awful\n',
            r"a.csv:2: a quoted field is not closed",
        ),
        ("a.csv", 'label,text\npos,"great\nneg,awful\npos,"fine"\n', r"a.csv:2: a quoted field"),
        ("a.csv", "label,text,text\npos,a,b\n", r"a.csv:1: the header has 2 columns named 'text'"),
        (
            "a.jsonl",
            '{"text": "hi", "label": true}\n',
            r"a.jsonl:1: a label must be text or a number",
        ),
        ("a.jsonl", '{"text": "hi", "label": {"a": 1}}\n', r"a.jsonl:1: a label must be text"),
        (
            "a.csv",
            "label,text\n" + "x" * 1_000_000 + ",hi\n",
            r"a.csv:2: a label of 1,000,000 characters",
        ),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(ValueError, match=message):
        read_corpus(path)


def test_numbers_are_labels_by_value(tmp_path):
    rows = [("a", 2), ("b", 2.0), ("c", "2"), ("d", " 2 "), ("e", 2.5), ("f", "x")]
    lines = "".join(json.dumps({"text": t, "label": v}) + "\n" for t, v in rows)
    corpus = read_corpus(write(tmp_path / "a.jsonl", lines))
    assert corpus.labels == ["2", "2", "2", "2", "2.5", "x"]


def test_undecodable_bytes_name_the_line(tmp_path):
    path = write(
        tmp_path / "a.tsv", b"label\ttext\npos\tfine\nneg\tbad \xff\xfe bytes\npos\tok\n", "wb"
    )
    with pytest.raises(ValueError, match=r"a.tsv:3: bytes that are not UTF-8"):
        read_corpus(path)
    corpus = read_corpus(path, ReaderOptions(skip_bad_rows=True))
    assert corpus.texts == ["fine", "ok"]
    assert corpus.report.skipped == {"undecodable bytes": 1}


def test_skip_bad_rows_counts_by_reason(tmp_path):
    path = write(tmp_path / "a.txt", "__label__a hi\nno label\n__label__b\n__label__a there\n")
    corpus = read_corpus(path, ReaderOptions(skip_bad_rows=True))
    assert corpus.texts == ["hi", "there"]
    assert corpus.report.to_dict() == {"rows": 2, "skipped": {"missing label": 1, "empty text": 1}}


def test_missing_file_and_folder_without_classes(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_corpus(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        read_corpus(tmp_path / "empty")


def test_fingerprint_identifies_the_data(tmp_path):
    a = read_corpus(write(tmp_path / "a.tsv", "label\ttext\np\thi\n"))
    b = read_corpus(write(tmp_path / "b.tsv", "label\ttext\np\thi\n"))
    c = read_corpus(write(tmp_path / "c.tsv", "label\ttext\nn\thi\n"))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_the_example_files_in_data_hold_the_same_rows():
    from pathlib import Path

    examples = Path(__file__).parents[2] / "data" / "examples"
    corpora = [
        read_corpus(examples / name)
        for name in ("reviews.csv", "reviews.tsv", "reviews.jsonl", "reviews.txt")
    ]
    first = sorted(zip(corpora[0].texts, corpora[0].labels, strict=True))
    assert len(first) == 12
    for corpus in corpora[1:]:
        assert sorted(zip(corpus.texts, corpus.labels, strict=True)) == first
    folder = read_corpus(examples / "reviews_by_class")
    assert (
        sorted((t.strip(), label) for t, label in zip(folder.texts, folder.labels, strict=True))
        == first
    )
