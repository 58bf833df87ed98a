import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.cli import app
from textcnn.text.scoring import score_file
from textcnn.training.pipeline import fit_and_save

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scorer")
    return fit_and_save(tiny_config(write_tsv(tmp / "train.tsv", tiny_texts()), tmp / "run"))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "texts.txt"
    texts = [text for text, _ in tiny_texts(500, seed=2)]
    path.write_text("".join(f"{texts[i % 500]} {i}\n" for i in range(50_000)))
    return path


def ids_of(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_fifty_thousand_lines_in_order(model_dir, big_file, tmp_path):
    out = tmp_path / "scores.jsonl"
    summary = score_file(textcnn.load(model_dir), str(big_file), str(out), progress=False)
    assert summary.rows == 50_000
    assert ids_of(out) == [str(i) for i in range(1, 50_001)]
    assert sum(summary.labels.values()) == 50_000


def test_killed_and_resumed_gives_every_row_exactly_once(model_dir, big_file, tmp_path):
    out = tmp_path / "scores.jsonl"
    command = [
        sys.executable,
        "-m",
        "textcnn.cli",
        "score",
        str(model_dir),
        str(big_file),
        "-o",
        str(out),
        "--chunk-size",
        "500",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 200_000):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = out.read_text().count("\n")
    assert 0 < written < 50_000, "the run was not interrupted part-way"
    with open(out, "a") as handle:  # and a torn last row, as a crash mid-write leaves
        handle.write('{"id": "999999", "lab')
    result = runner.invoke(
        app, ["score", str(model_dir), str(big_file), "-o", str(out), "--resume"]
    )
    assert result.exit_code == 0, result.output
    assert f"after {written} already written" in result.output
    assert ids_of(out) == [str(i) for i in range(1, 50_001)]


def test_csv_in_csv_out_with_ids_and_all_scores(model_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('key,body\nA7,"a good, fun film"\nB2,boring plot\n')
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            "score",
            str(model_dir),
            str(source),
            "-o",
            str(out),
            "--text-field",
            "body",
            "--id-field",
            "key",
            "--all-scores",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "id,label,score,truncated,score_negative,score_positive"
    assert [line.split(",")[0] for line in lines[1:]] == ["A7", "B2"]
    assert "scored 2 rows" in result.output and "rows/s" in result.output


def test_stdin_to_stdout(model_dir):
    result = runner.invoke(app, ["score", str(model_dir), "-"], input="good film\n\nawful\n")
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["id"] for r in rows] == ["1", "3"]


def test_stdin_replaced_by_a_text_stream(model_dir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("good film\n\nawful\r\n"))
    summary = score_file(textcnn.load(model_dir), "-", None, progress=False)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert summary.rows == 2 and [r["id"] for r in rows] == ["1", "3"]


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_line_that_is_not_utf8_is_named_or_skipped(model_dir, tmp_path, source):
    data = b"\xef\xbb\xbfgood film\r\nbad \xff bytes\n\nawful\n"
    path = tmp_path / "in.txt"
    path.write_bytes(data)
    where = [str(path)] if source == "file" else ["-"]
    given = {"input": data} if source == "stdin" else {}
    out = tmp_path / "out.jsonl"
    refused = runner.invoke(app, ["score", str(model_dir), *where, "-o", str(out)], **given)
    assert refused.exit_code == 1 and ":2: bytes that are not UTF-8" in refused.output
    result = runner.invoke(
        app,
        ["score", str(model_dir), *where, "-o", str(tmp_path / "kept.jsonl"), "--skip-bad-rows"],
        **given,
    )
    assert result.exit_code == 0, result.output
    assert ids_of(tmp_path / "kept.jsonl") == ["1", "4"]  # the BOM and the \r\n are not text


def test_refuses_to_overwrite_without_resume(model_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("good\n")
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "1"}\n')
    result = runner.invoke(app, ["score", str(model_dir), str(source), "-o", str(out)])
    assert result.exit_code == 1 and "--resume" in result.output
    assert out.read_text() == '{"id": "1"}\n'


def test_csv_resume_counts_records_not_lines(model_dir, tmp_path):
    # ids with a newline span two physical lines each in the CSV output
    source = tmp_path / "in.jsonl"
    rows = [{"id": f"row {i}\nsecond line", "text": f"a good film {i}"} for i in range(10)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scores.csv"
    classifier = textcnn.load(model_dir)
    score_file(classifier, str(source), str(out), id_field="id", progress=False)
    whole = out.read_bytes()
    records = whole.split(b"\n")
    # cut after the header and 4 complete records (2 physical lines each), in a quoted id
    cut = len(b"\n".join(records[:9])) + 1 + 5
    out.write_bytes(whole[:cut])
    summary = score_file(
        classifier, str(source), str(out), id_field="id", resume=True, progress=False
    )
    assert summary.resumed_after == 4 and summary.rows == 6
    assert out.read_bytes() == whole


def test_shards_merged_equal_the_single_process_output(model_dir, big_file, tmp_path):
    classifier = textcnn.load(model_dir)
    whole = tmp_path / "whole.jsonl"
    score_file(classifier, str(big_file), str(whole), progress=False)
    parts = [str(tmp_path / f"part{k}.jsonl") for k in range(2)]
    for k, part in enumerate(parts):
        summary = score_file(classifier, str(big_file), part, progress=False, shard=(k, 2))
        assert 0 < summary.rows < 50_000
    merged = tmp_path / "merged.jsonl"
    result = runner.invoke(app, ["merge", str(merged), *parts])
    assert result.exit_code == 0, result.output
    assert merged.read_bytes() == whole.read_bytes()
    # the same part twice, or one missing, is refused and writes nothing
    for bad in ([parts[0], parts[0]], [parts[0]]):
        result = runner.invoke(app, ["merge", str(tmp_path / "bad.jsonl"), *bad])
        assert result.exit_code == 1 and "merge needs each of 0/2 .. 1/2" in result.output
    assert not (tmp_path / "bad.jsonl").exists()


def test_under_torchrun_each_rank_scores_its_shard(model_dir, big_file, tmp_path):
    """``torchrun -m textcnn score``: the rank is the shard, each writes OUTPUT.part-K-of-N."""
    out = tmp_path / "scores.jsonl"
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    args = ["-m", "textcnn", "score", str(model_dir), str(big_file), "-o", str(out)]
    done = subprocess.run([*launch, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    parts = [tmp_path / f"scores.part-{k}-of-2.jsonl" for k in range(2)]
    assert all(0 < len(ids_of(part)) < 50_000 for part in parts)
    result = runner.invoke(app, ["merge", str(out), *map(str, parts)])
    assert result.exit_code == 0, result.output
    assert ids_of(out) == [str(i) for i in range(1, 50_001)]
    # without --output the ranks would write into each other: refused
    alone = subprocess.run([*launch, *args[:-2]], capture_output=True, text=True)
    assert alone.returncode != 0 and "every rank writes its own part" in alone.stderr


def test_csv_shards_and_a_killed_shard(model_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"a good film {i}\n" for i in range(3000)))
    classifier = textcnn.load(model_dir)
    whole = tmp_path / "whole.csv"
    score_file(classifier, str(source), str(whole), progress=False, all_scores=True)
    parts = [tmp_path / f"part{k}.csv" for k in range(3)]
    for k, part in enumerate(parts):
        score_file(
            classifier, str(source), str(part), progress=False, all_scores=True, shard=(k, 3)
        )
    (tmp_path / "part1.csv.shard.json").unlink()  # as if killed before it finished
    result = runner.invoke(app, ["merge", str(tmp_path / "m.csv"), *map(str, parts)])
    assert result.exit_code == 1 and "not a finished --shard run" in result.output
    score_file(
        classifier,
        str(source),
        str(parts[1]),
        progress=False,
        all_scores=True,
        shard=(1, 3),
        resume=True,
    )
    assert runner.invoke(app, ["merge", str(tmp_path / "m.csv"), *map(str, parts)]).exit_code == 0
    assert (tmp_path / "m.csv").read_bytes() == whole.read_bytes()


def test_a_bad_row_keeps_the_rows_scored_before_it(model_dir, tmp_path):
    """Scoring runs a chunk ahead of writing: a row that cannot be read stops the run, and
    every chunk read before it is still written, so a resume needs only what follows."""
    source = tmp_path / "rows.jsonl"
    rows = [json.dumps({"id": f"r{i}", "text": f"good film {i}"}) for i in range(25)]
    rows[22] = '{"id": "r22", "text": '  # torn JSON in the third chunk of ten
    source.write_text("\n".join(rows) + "\n")
    out = tmp_path / "scores.jsonl"
    classifier = textcnn.load(model_dir)
    with pytest.raises(ValueError, match=r"rows.jsonl:23"):
        score_file(classifier, str(source), str(out), id_field="id", chunk_size=10, progress=False)
    assert ids_of(out) == [f"r{i}" for i in range(20)]
    rows[22] = json.dumps({"id": "r22", "text": "mended"})
    source.write_text("\n".join(rows) + "\n")
    score_file(
        classifier, str(source), str(out), id_field="id", chunk_size=10, resume=True, progress=False
    )
    assert ids_of(out) == [f"r{i}" for i in range(25)]
