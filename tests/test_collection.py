"""Plain `pytest`, run from any folder, collects the whole suite: no test imports `tests.…`, which
resolves to the top-level `tests` package tf2onnx installs instead of this folder."""

import pathlib
import subprocess
import sys

TESTS = pathlib.Path(__file__).parent


def test_plain_pytest_from_another_folder_collects_every_test(tmp_path):
    # sys.path[0] is tmp_path, as for the `pytest` script: nothing puts the checkout on the path
    done = subprocess.run([sys.executable, "-c", "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))",
                           "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts=", str(TESTS)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "error" not in done.stdout.splitlines()[-1], done.stdout[-3000:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    modules = {line.split("::")[0].rsplit("/", 1)[-1] for line in collected}
    assert modules == {path.name for path in TESTS.glob("test_*.py")}
