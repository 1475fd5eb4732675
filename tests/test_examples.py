"""The example scripts run as a user would run them."""
import os
import re
import subprocess
import sys


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _run(script, *args):
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_notebook_shapes_prints_the_notebooks_output():
    # Two blocks built first, as in cells 2-3: the stem is conv5/batchnorm4, as in cell 8.
    assert _run("notebook_shapes.py") == """\
(4, 3, 6, 6)
(4, 6, 3, 3)
conv5 output shape:\t (1, 64, 112, 112)
batchnorm4 output shape:\t (1, 64, 112, 112)
relu0 output shape:\t (1, 64, 112, 112)
pool0 output shape:\t (1, 64, 56, 56)
hybridsequential0 output shape:\t (1, 64, 56, 56)
hybridsequential1 output shape:\t (1, 128, 28, 28)
hybridsequential2 output shape:\t (1, 256, 14, 14)
hybridsequential3 output shape:\t (1, 512, 7, 7)
pool1 output shape:\t (1, 512, 1, 1)
dense0 output shape:\t (1, 10)
parameters: 11,186,186 (11,178,378 trainable)
"""


def test_book_chapter_trains_with_d2lzh():
    out = _run("book_chapter.py", "--limit-train", "512", "--limit-test", "256",
               "--epochs", "1", "--resize", "28", "--batch-size", "64")
    assert out.startswith("training on cpu(0)\n")
    assert re.search(r"^epoch 1, loss \d+\.\d{4}, train acc 0\.\d{3}, test acc 0\.\d{3}, "
                     r"time \d+\.\d sec$", out, re.M), out
