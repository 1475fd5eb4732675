"""The example scripts run as a user would run them."""
import os
import re

import pytest

from common import CELL_8

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _run(cli, script, *args):
    result = cli.python(os.path.join(EXAMPLES, script), *args, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_notebook_shapes_prints_the_notebooks_output(cli):
    # Two blocks built first, as in cells 2-3: the stem is conv5/batchnorm4, as in cell 8.
    cell_8 = CELL_8.replace("conv0 ", "conv5 ").replace("batchnorm0 ", "batchnorm4 ")
    assert _run(cli, "notebook_shapes.py") == (
        "(4, 3, 6, 6)\n(4, 6, 3, 3)\n" + cell_8 + "parameters: 11,186,186 (11,178,378 trainable)\n")


@pytest.mark.slow
def test_book_chapter_trains_with_d2lzh(cli):
    out = _run(cli, "book_chapter.py", "--limit-train", "512", "--limit-test", "256",
               "--epochs", "1", "--resize", "28", "--batch-size", "64")
    assert out.startswith("training on cpu(0)\n")
    assert re.search(r"^epoch 1, loss \d+\.\d{4}, train acc 0\.\d{3}, test acc 0\.\d{3}, "
                     r"time \d+\.\d sec$", out, re.M), out
