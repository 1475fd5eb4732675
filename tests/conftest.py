"""Shared fixtures: fresh block names and fixed seeds for every test."""
import os
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
