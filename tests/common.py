"""What several test files expect, written once: the notebook's output, quick-run options, helpers."""
import copy
import os
import re
import shutil
import signal
import subprocess
import time

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from resnet_gluon import build_resnet18, copy_weights, precision
from resnet_gluon.checkpoint import find_checkpoints

#: The environment of what the tests start (command lines, notebook kernels): 2 threads
#: (without OMP_NUM_THREADS, MXNet took 1 thread here and the notebooks ran 2.7x slower).
CHILD_ENV = dict(os.environ, OMP_NUM_THREADS="2")

#: Whether bfloat16 can run on this CPU: not without AVX-512 (an AVX2 EPYC), where oneDNN 2.4
#: has no bf16 kernels.  There the tests that compute in bf16 are skipped and the bf16 steps
#: of longer tests check the refusal instead, in these words.
BF16_RUNS = precision.bfloat16_case()[0] != "unsupported"
NO_BF16 = "bfloat16 cannot run here: this CPU has no AVX-512"
needs_bfloat16 = pytest.mark.skipif(not BF16_RUNS, reason="this CPU has no AVX-512, so no "
                                    "bfloat16 (its refusal is tested in test_precision.py)")

#: Notebook cell 8's printed output (d2l-zh 5.11), for a net built first in its session.
CELL_8 = """\
conv0 output shape:\t (1, 64, 112, 112)
batchnorm0 output shape:\t (1, 64, 112, 112)
relu0 output shape:\t (1, 64, 112, 112)
pool0 output shape:\t (1, 64, 56, 56)
hybridsequential0 output shape:\t (1, 64, 56, 56)
hybridsequential1 output shape:\t (1, 128, 28, 28)
hybridsequential2 output shape:\t (1, 256, 14, 14)
hybridsequential3 output shape:\t (1, 512, 7, 7)
pool1 output shape:\t (1, 512, 1, 1)
dense0 output shape:\t (1, 10)
"""

#: The ten output shapes of cell 8, in order.
TEN_SHAPES = [line.split("\t ")[1] for line in CELL_8.splitlines()]

#: What ``shapes`` prints after the table for the notebook's net.
PARAMS_LINE = ("parameters: 11,186,186 (11,178,378 trainable, 7,808 BatchNorm running "
               "statistics)\n")

#: The book's epoch line, as ``train_ch5`` prints it.
LINE = re.compile(r"^epoch (\d+), loss (\d+\.\d{4}), train acc (\d\.\d{3}), "
                  r"test acc (\d\.\d{3}), time \d+\.\d sec$")

# Quick runs, where only what happens around the run matters: the first 256 real images at the
# native 28x28, 4 steps an epoch.
TINY = ["--limit-train", "256", "--limit-test", "64", "--resize", "28", "--batch-size", "64",
        "--no-progress"]
# For resume, killed and whole: the first 512 images, 8 steps an epoch, with momentum (optimizer
# state to resume) and step checkpoints inside epochs.
QUICK = ["--limit-train", "512", "--limit-test", "256", "--resize", "28", "--batch-size", "64",
         "--no-progress", "--epochs", "2", "--checkpoint-every", "3", "--momentum", "0.9",
         "--wd", "5e-4", "--lr", "0.02"]


def load_params(path):
    """A params file as ``{name: numpy array}``."""
    return {k: v.asnumpy() for k, v in nd.load(str(path)).items()}


def assert_same_params(a, b):
    """Two params files hold the same names and bit-identical values."""
    pa, pb = load_params(a), load_params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def alive(pid):
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def resnet18_like(src, X):
    """Initialise ``src`` (Xavier) on ``X``; return a new ResNet-18 holding the same weights."""
    src.initialize(mx.init.Xavier())
    src(X)
    ours = build_resnet18()
    ours.initialize()
    ours(X)
    copy_weights(src, ours)
    return ours


class StopAt:
    """A BatchIter that stops the run, as Ctrl-C would, when it reaches global step ``at``."""

    def __init__(self, data, at):
        self.data, self.at = data, at

    def __len__(self):
        return len(self.data)

    def batches(self, epoch, start=0):
        for i, batch in enumerate(self.data.batches(epoch, start), start=start):
            if epoch * len(self.data) + i == self.at:
                raise KeyboardInterrupt
            yield batch


# --------------------------------------------------------------------------- the example notebooks

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def execute_notebook(name, timeout=600):
    """``examples/NAME`` run in a fresh Jupyter kernel at 2 threads, as a reader would run it.

    Returns ``(committed, executed, seconds)``; raises CellExecutionError, with the cell
    and its traceback, if any cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    committed = nbformat.read(os.path.join(EXAMPLES, name), as_version=4)
    nb = copy.deepcopy(committed)
    tic = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": EXAMPLES}}).execute(env=CHILD_ENV)
    return committed, nb, time.time() - tic


def notebook_cell(nb, needle):
    """The first code cell whose source contains ``needle``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert cells, f"no code cell contains {needle!r}"
    return cells[0]


def assert_outputs_current(name, committed, executed, comparable):
    """Every code cell's ``comparable(cell)`` is the same in the committed notebook as in a
    fresh run; else the message says which cell is stale and how to refresh it."""
    refresh = f"jupyter nbconvert --to notebook --execute --inplace examples/{name}"
    for i, (old, new) in enumerate(zip(committed.cells, executed.cells)):
        if new.cell_type == "code":
            assert comparable(old) == comparable(new), (
                f"examples/{name}: the committed output of cell {i} is stale; run: {refresh}")


def kill_when(proc, run, condition, limit=300):
    """SIGKILL ``proc`` once ``condition(checkpoints of run)`` holds; fail if it never does."""
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None:
        if condition(find_checkpoints(str(run))):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"run ended or stalled before the kill point: {proc.stderr.read()}")


def skip_unless_ci(reason):
    """Skip with ``reason``; in CI (``CI=true``, set by .ci/run, which installs what these tests
    need and runs as root) fail instead: there the capability must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (in CI, where it must work)")
    pytest.skip(reason)


def write_class_folders(root, images, labels, keep, per_class, start=0, name="{i}.png"):
    """ROOT/CLASS/NAME PNGs: for each label in ``keep``, ``per_class`` of its ``images`` from
    the ``start``-th on, in a folder named by its Fashion-MNIST class."""
    from PIL import Image

    from resnet_gluon.data import CLASS_NAMES

    for label in keep:
        folder = root / CLASS_NAMES[label]
        folder.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(labels == label)[start:start + per_class]):
            Image.fromarray(images[index]).save(folder / name.format(i=i))


def _chromium():
    """The headless browser (Debian's chromium); in CI it must be there."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    skip_unless_ci("no headless Chromium (apt-get install chromium)")


def look_in_browser(page, tmp_path):
    """What a browser shows of ``page``: (screenshot as an array, images loaded, images,
    the text of the page)."""
    from PIL import Image

    browser = _chromium()
    # A copy that counts, once loaded, the images the browser decoded: the report itself
    # has no script.
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace(
        "</body>", "<script>window.addEventListener('load', () => { const i = "
        "[...document.images]; document.body.insertAdjacentHTML('beforeend', '<p id=loaded>'"
        " + i.filter(x => x.complete && x.naturalWidth > 0).length + '/' + i.length + "
        "'</p>'); });</script></body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,3000",
                    page.as_uri()], capture_output=True, timeout=120)
    loaded, count = map(int, re.search(r'id="loaded">(\d+)/(\d+)<', dom).groups())
    return np.asarray(Image.open(shot).convert("L")), loaded, count, dom


def report_sections(html):
    """The ids of an HTML report's sections, in order."""
    return re.findall(r'<section id="([^"]+)">', html)
