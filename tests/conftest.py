"""Shared fixtures: fresh block names and fixed seeds for every test."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/notebook.py


@pytest.fixture(autouse=True)
def _fresh_names_and_seeds():
    """Each test numbers its blocks from 0 (conv0, batchnorm0, ...) and draws the same numbers."""
    mx.random.seed(0)
    np.random.seed(0)
    with mx.name.NameManager():
        yield


@pytest.fixture
def x224():
    """Notebook cell 8's input."""
    return mx.nd.random.uniform(shape=(1, 1, 224, 224))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run directory: eight steps of the book's recipe on 512 real training images (96x96)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    result = subprocess.run(
        [sys.executable, "-m", "resnet_gluon", "train", "--out", str(run), "--limit-train", "512",
         "--limit-test", "64", "--batch-size", "64", "--epochs", "1", "--no-progress"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert result.returncode == 0, result.stderr
    return run
