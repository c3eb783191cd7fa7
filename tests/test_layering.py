"""The floors: each package imports only the floors beneath it (DESIGN.md), checked on every
module's imports and on every module path written in a string (importlib, `python -m`)."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# package -> the packages it may import (besides itself)
ALLOWED = {
    "zoo": set(),
    "tuning": {"zoo"},
    "evaluation": {"zoo"},
    "export": {"zoo"},
    "keras_zoo": {"zoo", "tuning", "evaluation", "export"},
}
MODULE_IN_STRING = re.compile(r"^(zoo|tuning|evaluation|export|keras_zoo)(\.[A-Za-z_]\w*)*$")


def edges(source):
    """(line, imported top-level package, how) for every import and module-path string."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0], f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0], f"from {node.module} import ..."
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if MODULE_IN_STRING.match(node.value) and "." in node.value or node.value == "keras_zoo":
                yield node.lineno, node.value.split(".")[0], f"string {node.value!r}"


def upward_edges(package, path):
    allowed = ALLOWED[package] | {package}
    return [f"{path.relative_to(ROOT)}:{line}: {how}"
            for line, target, how in edges(path.read_text())
            if target in ALLOWED and target not in allowed]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_a_floor_above_it(package):
    found = [edge for path in sorted((ROOT / package).rglob("*.py"))
             for edge in upward_edges(package, path)]
    assert not found, "upward imports:\n" + "\n".join(found)


@pytest.mark.parametrize("planted", [
    "from tuning.search import search\n",
    "import keras_zoo.cli\n",
    "def f():\n    import evaluation\n",
    "import importlib\nimportlib.import_module('export.cli')\n",
    "COMMAND = ['python', '-m', 'keras_zoo', 'tune']\n",
])
def test_a_planted_upward_import_is_caught(tmp_path, planted):
    folder = tmp_path / "zoo"
    folder.mkdir()
    module = folder / "planted.py"
    module.write_text(planted)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert upward_edges("zoo", module)
    finally:
        ROOT = saved


def test_the_floors_are_the_packages_the_distribution_ships():
    text = (ROOT / "pyproject.toml").read_text()
    shipped = set(re.findall(r'"(\w+)\*"', text.split("[tool.setuptools.packages.find]")[1]))
    assert shipped == set(ALLOWED)


def mlflow_modules(package_root):
    """The modules of a package that import MLflow (any `mlflow` or `mlflow.*` import)."""
    return sorted(str(path.relative_to(package_root.parent)) for path in package_root.rglob("*.py")
                  if any(target == "mlflow" and how.startswith(("import", "from"))
                         for _, target, how in edges(path.read_text())))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_at_most_one_module_of_a_package_imports_mlflow(package):
    """One tracking boundary a floor: `tuning/tracking.py` (the search's Tracker),
    `evaluation/tracking.py` (the report's own MLflow call), ..."""
    found = mlflow_modules(ROOT / package)
    assert len(found) <= 1, found


def test_a_second_module_importing_mlflow_is_caught(tmp_path):
    package = tmp_path / "tuning"
    package.mkdir()
    (package / "tracking.py").write_text("def f():\n    from mlflow import MlflowClient\n")
    assert len(mlflow_modules(package)) == 1
    (package / "search.py").write_text("def g():\n    import mlflow\n")
    assert mlflow_modules(package) == ["tuning/search.py", "tuning/tracking.py"]
