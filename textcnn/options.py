"""The command-line options several ``textcnn`` commands share, and the settings help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelDir = Annotated[Path, typer.Argument(help="a model directory (model-best)")]
DataOpt = Annotated[
    str | None, typer.Option(help="training file or class folder, or 'tweets' (built in)")
]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="run folder")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file of settings")]
EpochsOpt = Annotated[int | None, typer.Option(help="maximum epochs (early stopping on dev)")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto|cpu|cuda|mps")]
SeedOpt = Annotated[int | None, typer.Option(help="random seed")]
FormatOpt = Annotated[str | None, typer.Option(help="csv|tsv|jsonl|fasttext|folder|lines")]
TextFieldOpt = Annotated[str, typer.Option(help="column/key of the text")]
SkipOpt = Annotated[bool, typer.Option("--skip-bad-rows", help="skip and count bad rows")]
MinScoreOpt = Annotated[
    float | None, typer.Option(min=0, max=1, help="abstain (no label) below this top score")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
# Any other setting is an option of its own (--model.num_filters 200, --num-filters 200,
# --augment / --no-augment, --set KEY=VALUE); `--arch` implies an image run.
SETTINGS_HELP = (
    "Any other setting goes as --SECTION.KEY VALUE, --KEY VALUE or --set KEY=VALUE (e.g. "
    "--recipe ngram, --model.num_filters 200, --embedding-mode static, --vectors FILE, "
    "--arch lenet5, --augment); an unknown one is an error that lists them all. Text "
    "recipes: minilm-ngram (the default when MiniLM is installed), ngram, rand, glove, "
    "minilm-wordpiece, distilled."
)
SETTINGS = {"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}}
