"""The HTTP service of two versions of textcnn under the same loads, taking turns: is a
change slower? Runs on one busy machine drift by a third; turns a few seconds apart do not.

    python benchmarks/serving_versions.py BASELINE [--model MODEL_DIR] [--rounds 3]
                                          [--seconds 4] [--workers 1]

BASELINE is a git revision, checked out into a temporary worktree; the other version is
this checkout. Both servers run at once (idle while the other is loaded), each row of
``serving.py``'s loads is sent to one, then the other, ``--rounds`` times. Without
``--model``, a model is trained on MR for one epoch. Reads ``$TEXTCNN_DATA_DIR``; writes
``benchmarks/results/serving_versions.json`` (``serving_versions_N_workers.json``) and prints
a Markdown table of requests/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from serving import DATA, LOADS, mr_sentences_for_wrk, start_server, wrk

from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

ROOT = Path(__file__).parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", help="git revision to compare this checkout with")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    texts = mr_sentences_for_wrk()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        old = tmp / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old), args.baseline], cwd=ROOT, check=True
        )
        model = args.model
        if model is None:
            overrides = {"data": str(DATA / "mr" / "all.tsv"), "epochs": 1, "progress": False}
            model = fit_and_save(load_config(overrides={**overrides, "output": str(tmp / "m")}))
        servers = {}
        try:
            for name, root in ((args.baseline, old), ("this checkout", ROOT)):
                servers[name] = start_server(model, {}, args.workers, root=root)
            rows = []
            for connections, per_request in LOADS:
                chosen = texts[:per_request]
                body = json.dumps({"text": chosen[0]} if per_request == 1 else {"texts": chosen})
                rates = {name: [] for name in servers}
                for _, url in servers.values():
                    wrk(url, body, connections, 2, tmp)  # warm-up
                for _ in range(args.rounds):
                    for name, (_, url) in servers.items():
                        result = wrk(url, body, connections, args.seconds, tmp)
                        rates[name].append(result["requests_per_s"])
                rows.append({"connections": connections, "texts_per_request": per_request, **rates})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait()
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT)
    name = "serving_versions" + (f"_{args.workers}_workers" if args.workers > 1 else "")
    out = Path(__file__).parent / "results" / f"{name}.json"
    out.write_text(json.dumps({"workers": args.workers, "rows": rows}, indent=2) + "\n")
    names = list(servers)
    print(f"\n| connections | texts/request | {names[0]} | {names[1]} | ratio of medians |")
    print("|---|---|---|---|---|")
    for row in rows:
        a, b = (statistics.median(row[name]) for name in names)
        spread = [f"{min(row[n]):,.0f}-{max(row[n]):,.0f}" for n in names]
        print(
            f"| {row['connections']} | {row['texts_per_request']} | {spread[0]} | {spread[1]} "
            f"| {b / a:.2f} |"
        )


if __name__ == "__main__":
    main()
