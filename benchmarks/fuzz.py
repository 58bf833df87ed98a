"""A long fuzzing run of the HTTP API: the suite's schemathesis test with many more cases.

    python benchmarks/fuzz.py [--examples 5000]

Runs ``tests/service/test_fuzz.py`` (a tiny model, the real server in a subprocess, every
schemathesis check: no 5xx, status codes and bodies as the OpenAPI schema says, valid
input accepted, invalid input refused) with ``--examples`` generated requests per operation
and mode: POST /classify takes them valid and invalid, the GET probes take no input (one
case each). Prints the cases by operation, mode and status, and the failures, and writes
``benchmarks/results/fuzz.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
TEST = "tests/service/test_fuzz.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="per operation and mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "statuses.json"
        env = {
            **os.environ,
            "TEXTCNN_FUZZ_EXAMPLES": str(args.examples),
            "TEXTCNN_FUZZ_REPORT": str(report),
        }
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        statuses = json.loads(report.read_text()) if report.exists() else {}
    summary_line = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    result = {
        "examples_per_operation": args.examples,
        "cases": sum(statuses.values()),
        "server_errors": sum(n for key, n in statuses.items() if key.endswith((" 500", " 503"))),
        "statuses": statuses,
        "pytest": summary_line,
        "passed": run.returncode == 0,
        "seconds": round(seconds, 1),
    }
    print("| operation | mode | status | cases |\n|---|---|---|---|")
    for key, count in statuses.items():
        method, path, mode, status = key.split()
        print(f"| {method} {path} | {mode} | {status} | {count} |")
    print(f"\n{result['cases']} cases in {seconds:.0f} s; {summary_line}")
    if run.returncode != 0:
        print(run.stdout[-5000:])
    out = ROOT / "benchmarks" / "results" / "fuzz.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
