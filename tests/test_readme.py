"""The README's Python blocks run as written: all of them, in order, in one process, in an empty
folder (a later block may use what an earlier one made, as a reader's session would)."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def readme_blocks():
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(readme_blocks()) >= 4


def test_every_readme_python_block_runs_in_an_empty_folder(tmp_path):
    script = "\n\n".join(readme_blocks())
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
