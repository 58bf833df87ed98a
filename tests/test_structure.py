"""The package's shape: no import cycle, and every predictor speaks the same protocol."""

import ast
from pathlib import Path

import pytest

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.training.pipeline import fit_and_save

PACKAGE = Path(textcnn.__file__).parent


def module_imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at load time or inside functions."""
    graph = {}
    for file in PACKAGE.rglob("*.py"):
        parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(file.read_text())):  # deferred imports too
            if isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                for alias in node.names:  # "from . import x" may name a module
                    candidate = f"{module}.{alias.name}"
                    targets.add(candidate if candidate in all_modules() else module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t.split(".")[0] == "textcnn" and t != name}
    return graph


def all_modules() -> set[str]:
    names = set()
    for file in PACKAGE.rglob("*.py"):
        parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_no_import_cycle_in_the_package():
    graph = module_imports()
    visiting, done = [], set()

    def visit(module):
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting, module])
        visiting.append(module)
        for target in graph.get(module, ()):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in graph:
        visit(module)


def test_the_layers_import_nothing_else_of_the_project():
    graph = module_imports()
    for module, targets in graph.items():
        if module.startswith("textcnn.layers"):
            assert all(t.startswith("textcnn.layers") for t in targets), (module, targets)


def test_text_and_image_models_load_as_predictors(tmp_path):
    data = write_tsv(tmp_path / "train.tsv", tiny_texts(40))
    text = textcnn.load(fit_and_save(tiny_config(data, tmp_path / "run", epochs=1)))
    assert isinstance(text, textcnn.Predictor) and text.task == "text"
    assert text.predict(["a good film"], top_k=2)[0][0].label in text.labels
    config = (tmp_path / "run" / "model-best" / "config.json").read_text()
    (tmp_path / "run" / "model-best" / "config.json").write_text(
        config.replace('"task": "text"', '"task": "audio"')
    )
    with pytest.raises(ValueError, match="task 'audio'; this textcnn loads text, image"):
        textcnn.load(tmp_path / "run" / "model-best")
