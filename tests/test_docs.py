"""The README and docs/: every link and every file path they name exists, the README stays a
guide (short), and their Python code runs as written."""
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from common import CHILD_ENV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
#: Pages whose links are checked too: the index of the benchmark results.
MORE = [os.path.join(ROOT, "benchmarks", "results", "README.md")]
#: Folders whose files a page may name in backticks (`benchmarks/results/book-recipe/`).
TOP = ("benchmarks/", "docs/", "examples/", "resnet_gluon/", "tests/", ".ci/")


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path):
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", _read(path), re.M)}


def _links(text):
    """Relative link targets of ``[text](target)`` and ``![alt](target)``."""
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text)
            if not re.match(r"[a-z]+:", t)]


def _paths(text):
    """Repository paths named in backticks, e.g. `tests/test_hosts.py::test_x`."""
    found = re.findall(r"`([A-Za-z0-9_./:-]+)`", text)
    return [p for p in found if p.startswith(TOP) and "<" not in p]


def test_the_link_and_path_finders_see_what_pages_hold():
    text = ("See [a](docs/a.md#b-c), ![p](x.png), [w](https://example.org) and "
            "`tests/test_x.py::test_y`, `runs/<run>/model.params`, `--flag`.")
    assert _links(text) == ["docs/a.md#b-c", "x.png"]
    assert _paths(text) == ["tests/test_x.py::test_y"]
    assert _slug("Time to accuracy: `--recipe fast`") == "time-to-accuracy---recipe-fast"


@pytest.mark.parametrize("page", PAGES + MORE, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_link_and_path_on_the_page_exists(page):
    text = _read(page)
    missing = []
    for target in _links(text):
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(full):
            missing.append(target)
        elif anchor and full.endswith(".md") and anchor not in _anchors(full):
            missing.append(f"{target} (no such heading)")
    for named in _paths(text):
        path, _, test = named.partition("::")
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            missing.append(named)
        elif test and f"def {test}(" not in _read(full):
            missing.append(f"{named} (no such test)")
    assert not missing, f"{os.path.relpath(page, ROOT)} names what is not there: {missing}"


def test_the_readme_is_a_guide_with_the_docs_behind_it():
    text = _read(PAGES[0])
    assert len(text.splitlines()) <= 220
    linked = {os.path.normpath(t.partition("#")[0]) for t in _links(text)}
    for page in PAGES[1:]:  # every docs page is reachable from the README
        assert os.path.relpath(page, ROOT) in linked, page
    assert 'python -m pytest -q -m "not slow"' in text


def _python_blocks(page):
    return re.findall(r"```python\n(.*?)```", _read(page), re.S)


def _run(code, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=CHILD_ENV,
                          capture_output=True, text=True, timeout=600)


def test_the_readmes_model_code_runs_as_written(tmp_path):
    (block,) = [b for b in _python_blocks(PAGES[0]) if "notebook cell 3" in b]
    check = ("\nnet50.initialize()\n"
             "print(blk(nd.random.uniform(shape=(4, 3, 6, 6))).shape, "
             "net50(nd.zeros((1, 1, 28, 28))).shape)")
    result = _run(block + check, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hybridsequential3 output shape:\t (1, 512, 7, 7)" in result.stdout
    assert result.stdout.splitlines()[-1] == "(4, 6, 3, 3) (1, 10)"


@pytest.mark.slow
def test_the_training_pages_script_runs_as_written(tmp_path):
    (block,) = [b for b in _python_blocks(os.path.join(ROOT, "docs", "training.md"))
                if "fit(net" in b]
    result = _run(block.replace('"runs/mine"', '"runs/mine", progress=False'), tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^epoch 2, loss ", result.stdout, re.M), result.stdout
    assert (tmp_path / "runs" / "mine" / "model.params").is_file()


@pytest.mark.slow
def test_the_deploy_pages_int8_code_runs_as_written(tmp_path):
    (block,) = _python_blocks(os.path.join(ROOT, "docs", "deploy.md"))
    result = _run(block + "\nprint(type(int8).__name__, info.resize)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "SymbolBlock 64"


def test_the_training_pages_fine_tuning_code_runs_as_written(tmp_path):
    (block,) = [b for b in _python_blocks(os.path.join(ROOT, "docs", "training.md"))
                if "init_from" in b]
    result = _run(block, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the 1-channel stem widened to 3 channels" in result.stdout
    assert "9.weight: new, (5, 512)" in result.stdout


@pytest.mark.slow
def test_the_own_images_pages_script_runs_as_written(tmp_path, test_images):
    from PIL import Image

    from resnet_gluon.data import CLASS_NAMES

    images, labels = test_images
    for label in (1, 5, 7):  # trouser, sandal, sneaker: 24 training and 8 test images each
        for i, index in enumerate(np.flatnonzero(labels == label)[:32]):
            folder = tmp_path / "images" / ("train" if i < 24 else "test") / CLASS_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[index]).save(folder / f"{i}.png")
    (block,) = [b for b in _python_blocks(os.path.join(ROOT, "docs", "own-images.md"))
                if "load_folder_splits" in b]
    result = _run(block, tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^epoch 1, loss .* test acc ", result.stdout, re.M), result.stdout
    config = json.loads((tmp_path / "runs" / "images" / "config.json").read_text())
    assert config["classes"] == ["sandal", "sneaker", "trouser"]
    assert config["preprocess"] == "crop" and config["test_data"].endswith("images/test")
