"""`python -m resnet_gluon` and the `resnet-gluon` console script: the same CLI."""
import os
import shutil
import subprocess
import sys

import pytest

from resnet_gluon.cli import main
from test_shapes import CELL_8


def _run(*args, console=False):
    exe = [shutil.which("resnet-gluon") or os.path.join(os.path.dirname(sys.executable),
                                                        "resnet-gluon")] if console \
        else [sys.executable, "-m", "resnet_gluon"]
    return subprocess.run(exe + list(args), capture_output=True, text=True, timeout=300)


PARAMS_LINE = ("parameters: 11,186,186 (11,178,378 trainable, 7,808 BatchNorm running "
               "statistics)\n")


@pytest.mark.parametrize("console", [False, True])
def test_shapes_with_no_options_prints_the_notebooks_ten_shapes(console):
    result = _run("shapes", console=console)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CELL_8 + PARAMS_LINE


def test_shapes_options(capsys):
    assert main(["shapes", "--input", "2,3,64,64", "--depth", "50", "--classes", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "conv0 output shape:\t (2, 64, 32, 32)"
    assert lines[7] == "hybridsequential3 output shape:\t (2, 2048, 2, 2)"
    assert lines[9] == "dense0 output shape:\t (2, 5)"
    assert lines[10] == ("parameters: 23,582,597 (23,537,157 trainable, 45,440 BatchNorm "
                         "running statistics)")


def test_shapes_small_input(capsys):
    assert main(["shapes", "--small-input", "--input", "1,1,28,28"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10  # nine layers: no max-pool
    assert lines[0] == "conv0 output shape:\t (1, 64, 28, 28)"
    assert lines[6] == "hybridsequential3 output shape:\t (1, 512, 4, 4)"


@pytest.mark.parametrize("args, message", [
    (["shapes", "--input", "1,1,224"], "expected four positive integers N,C,H,W"),
    (["shapes", "--input", "1,x,2,2"], "expected four positive integers"),
    (["shapes", "--depth", "19"], "invalid choice: 19 (choose from 18, 34, 50, 101, 152)"),
    (["shapes", "--classes", "0"], "expected a positive integer, got '0'"),
    (["shapes", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--random-erasing", "1.5"], "expected a probability in [0, 1], got '1.5'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_options_get_argparse_errors_not_traces(args, message):
    result = _run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_version():
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.startswith("resnet-gluon 0.")
