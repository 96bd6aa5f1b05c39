"""The library's layout rules that import-linter does not check: short modules, documented stages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[2] / "eo_tasks"
MAX_LINES = 400
STAGES = sorted(p for p in LIBRARY.iterdir() if (p / "__init__.py").is_file())


@pytest.mark.parametrize("module", sorted(LIBRARY.rglob("*.py")), ids=lambda p: str(p.relative_to(LIBRARY)))
def test_no_module_is_longer_than_the_limit(module: Path) -> None:
    lines = len(module.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module.relative_to(LIBRARY)}: {lines} lines; split it by what it does"


@pytest.mark.parametrize("package", STAGES, ids=lambda p: p.name)
def test_every_stage_package_says_what_it_does(package: Path) -> None:
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
    assert doc and len(doc) > 40, f"{package.name}/__init__.py: write a paragraph on what the stage does"


def test_the_stages_are_the_pipeline() -> None:
    assert {p.name for p in STAGES} == {
        "core",
        "ingest",
        "preprocess",
        "trainset",
        "training",
        "models",
        "maps",
        "store",
        "hpc",
    }
