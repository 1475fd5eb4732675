"""Shared fixtures: fresh names and seeds, one way to run the CLI, and the runs tests share."""
import contextlib
import io
import os
import signal
import subprocess
import sys
import traceback
import warnings

# The suite's own process computes at the 2 threads of what it starts (CHILD_ENV): without
# OMP_NUM_THREADS, MXNet ran a ResNet-18 training step 1.6x slower here. It must be set before
# MXNet loads its OpenMP library, so before the imports below.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import resnet_gluon  # noqa: E402,F401  first: with numpy >= 1.24 it makes MXNet importable
import mxnet as mx  # noqa: E402
import numpy as np
import pytest

from common import CHILD_ENV, QUICK, TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A suite started in the background of a script inherits SIGINT ignored, and so would every
# command it starts (an ignored signal stays ignored across exec): the Ctrl-C tests would
# test nothing. A handler of our own is reset to the default in the children instead.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# benchmarks/notebook.py (the notebook's own code) and the benchmark scripts.
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


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


class Runner:
    """Runs ``python -m resnet_gluon ...`` (or any script) as a user would, at 2 threads.

    ``cli(*args)`` runs the command line and returns the finished process
    (``returncode``, ``stdout``, ``stderr``); ``cli.python(*argv)`` runs any
    Python argv; ``cli.popen(*args)`` starts the command line without waiting.
    ``cli.here(*args)`` runs it inside this process (``main``), answering the same way
    (its warnings on its stderr) without the 3-4 seconds a new process spends importing
    MXNet: for every command whose process (signals, exit, threads, environment) is not
    what the test checks.  ``cli.exec(code)`` runs a page's script so, in fresh globals
    (this test's block names count from 0, as in a new process).
    """

    env = CHILD_ENV

    def __call__(self, *args, console=False, **kwargs) -> subprocess.CompletedProcess:
        if console:  # the installed console script instead of python -m
            exe = os.path.join(os.path.dirname(sys.executable), "resnet-gluon")
            return self._run([exe, *args], **kwargs)
        return self.python("-m", "resnet_gluon", *args, **kwargs)

    def python(self, *argv, timeout=600, env=None, cwd=None) -> subprocess.CompletedProcess:
        return self._run([sys.executable, *argv], timeout=timeout, env=env, cwd=cwd)

    def _run(self, argv, timeout=600, env=None, cwd=None):
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=dict(self.env, **(env or {})), cwd=cwd)

    def here(self, *args, cwd=None) -> subprocess.CompletedProcess:
        from resnet_gluon.cli import main

        return _in_process(["resnet-gluon", *args], lambda: main([str(a) for a in args]), cwd)

    def exec(self, code, cwd=None) -> subprocess.CompletedProcess:
        def run():
            try:
                exec(compile(code, "<script>", "exec"), {"__name__": "__main__"})
            except Exception:  # what python prints for an uncaught error, and its exit code
                traceback.print_exc()
                return 1
            return 0
        return _in_process(["python", "-c", code], run, cwd)

    def popen(self, *args, env=None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "resnet_gluon", *args],
                                env=dict(self.env, **(env or {})), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def _in_process(argv, run, cwd):
    """``run()`` (its exit code) with its output captured, as a process would give it."""
    def to_stderr(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    out, err = io.StringIO(), io.StringIO()
    # Warnings go to the command's stderr, as a process prints them (pytest would keep
    # them), and each shows again in every command (catch_warnings resets "once").
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(), _working_directory(cwd):
        warnings.showwarning = to_stderr
        try:
            code = run()
        except SystemExit as exit:  # argparse's errors, --version, sys.exit
            code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _working_directory(path):
    """``contextlib.chdir`` (Python 3.11) for the Pythons before it; None stays put."""
    before = os.getcwd()
    os.chdir(path or before)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="session")
def cli():
    """The one way tests run a command (see :class:`Runner`)."""
    return Runner()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, cli):
    """A run directory: eight steps of the book's recipe on 512 real training images (96x96)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    result = cli.here("train", "--out", str(run), "--limit-train", "512", "--limit-test", "64",
                      "--batch-size", "64", "--epochs", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    return run


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, cli):
    """An uninterrupted QUICK run at 28x28, the yardstick of resume and evaluation."""
    run = tmp_path_factory.mktemp("reference") / "run"
    result = cli("train", "--out", str(run), *QUICK)
    assert result.returncode == 0, result.stderr
    return run


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, cli):
    """A run at 28x28 with QUICK's settings but 4 steps (a checkpoint every 2): for the quick
    tests that read a run's files and options, not what its training learnt."""
    run = tmp_path_factory.mktemp("small") / "run"
    result = cli.here("train", "--out", str(run), *TINY, "--epochs", "1", "--checkpoint-every",
                      "2", "--momentum", "0.9", "--wd", "5e-4", "--lr", "0.02")
    assert result.returncode == 0, result.stderr
    return run


@pytest.fixture(scope="session")
def test_images():
    """The real Fashion-MNIST test set: uint8 (10000, 28, 28) images and their labels."""
    from resnet_gluon.data import load_fashion_mnist

    return load_fashion_mnist("test")


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """A colour folder: 40x40 crops of scikit-learn's two sample photographs (train and
    test from different parts of each photo)."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name, photo in zip(("china", "flower"), load_sample_images().images):
        for split, count, cols in (("train", 24, (0, 400)), ("test", 8, (400, 600))):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                y, x = rng.integers(0, 387), rng.integers(*cols)
                Image.fromarray(photo[y:y + 40, x:x + 40]).save(root / split / name / f"{i}.jpg")
    return root
