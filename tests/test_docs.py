"""The README and docs/: every link and every file path they name exists, the README stays a
guide (short), and their Python code runs as written."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from common import BF16_RUNS, CHILD_ENV, NO_BF16, report_sections

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
    assert len(text.splitlines()) <= 250  # a guide; the reference is in docs/
    linked = {os.path.normpath(t.partition("#")[0]) for t in _links(text)}
    for page in PAGES[1:]:  # every docs page is reachable from the README
        assert os.path.relpath(page, ROOT) in linked, page
    assert 'python -m pytest -q -m "not slow"' in text


def _python_blocks(page):
    return re.findall(r"```python\n(.*?)```", _read(page), re.S)


def _run(code, cwd):
    """A page's code in a new interpreter, as a user runs it (the other pages' code runs in
    this process, ``cli.exec``: the imports' order, which only a new process would catch,
    is checked below for every page)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=CHILD_ENV,
                          capture_output=True, text=True, timeout=600)


def test_every_pages_code_imports_resnet_gluon_before_mxnet():
    # With numpy >= 1.24, MXNet imports only after resnet_gluon (or the page's own line)
    # has restored numpy.bool.
    late = []
    for page in PAGES:
        for block in _python_blocks(page):
            mxnet = re.search(r"^\s*(?:from|import) mxnet\b", block, re.M)
            before = block[:mxnet.start()] if mxnet else ""
            if mxnet and not re.search(r"^\s*(?:(?:from|import) resnet_gluon\b|numpy\.bool = )",
                                       before, re.M):
                late.append((os.path.basename(page), block.splitlines()[0]))
    assert late == []


@pytest.mark.slow
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
def test_the_training_pages_script_runs_as_written(tmp_path, cli):
    (block,) = [b for b in _python_blocks(os.path.join(ROOT, "docs", "training.md"))
                if "fit(net" in b]
    result = cli.exec(block.replace('"runs/mine"', '"runs/mine", progress=False'), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^epoch 2, loss ", result.stdout, re.M), result.stdout
    assert (tmp_path / "runs" / "mine" / "model.params").is_file()


@pytest.mark.slow
def test_the_deploy_pages_int8_code_runs_as_written(tmp_path, cli):
    (block,) = [b for b in _python_blocks(os.path.join(ROOT, "docs", "deploy.md"))
                if "quantize" in b]
    result = cli.exec(block + "\nprint(type(int8).__name__, info.resize)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "SymbolBlock 64"


@pytest.mark.slow
def test_the_deploy_pages_inference_graph_code_runs_as_written(tmp_path, cli):
    (block,) = [b for b in _python_blocks(os.path.join(ROOT, "docs", "deploy.md"))
                if "for_inference" in b]
    result = cli.exec(block + "\nprint(scores.shape, scores.dtype.__name__)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "(1, 10) float32"


@pytest.mark.slow
def test_the_training_pages_fine_tuning_code_runs_as_written(tmp_path, cli):
    (block,) = [b for b in _python_blocks(os.path.join(ROOT, "docs", "training.md"))
                if "init_from" in b]
    result = cli.exec(block, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "the 1-channel stem widened to 3 channels" in result.stdout
    assert "9.weight: new, (5, 512)" in result.stdout


def _photos(root, kind, test_images):
    """ROOT/photos/train/CLASS/* and ROOT/photos/test/CLASS/*: real gray Fashion-MNIST
    images of three classes (24 and 8 each), or colour crops of scikit-learn's two
    photographs (train and test from different parts of each)."""
    from PIL import Image

    from resnet_gluon.data import CLASS_NAMES

    if kind == "gray":
        images, labels = test_images
        for label in (1, 5, 7):  # trouser, sandal, sneaker
            for i, index in enumerate(np.flatnonzero(labels == label)[:32]):
                folder = root / "photos" / ("train" if i < 24 else "test") / CLASS_NAMES[label]
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[index]).save(folder / f"{i}.png")
        return ["sandal", "sneaker", "trouser"]
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(0)
    for name, photo in zip(("china", "flower"), load_sample_images().images):
        for split, count, cols in (("train", 32, (0, 400)), ("test", 12, (400, 600))):
            (root / "photos" / split / name).mkdir(parents=True)
            for i in range(count):
                y, x = rng.integers(0, 387), rng.integers(*cols)
                Image.fromarray(photo[y:y + 40, x:x + 40]).save(
                    root / "photos" / split / name / f"{i}.jpg")
    return ["china", "flower"]


def _marked_block(page, mark):
    (block,) = re.findall(f"<!-- {mark} -->\n```python\n(.*?)```", _read(page), re.S)
    return block


def _on_this_cpu(block):
    """A page's block as a user of this CPU runs it: where bfloat16 cannot run (no AVX-512),
    with the fix the page gives, ``recipe("fast", dtype="float32", ...)``."""
    if BF16_RUNS:
        return block
    assert 'recipe("fast", ' in block, block
    return block.replace('recipe("fast", ', 'recipe("fast", dtype="float32", ')


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gray", "colour"])
def test_the_own_images_script_trains_a_run_every_command_reads_as_trained(
        tmp_path, cli, test_images, kind):
    # The acceptance case: the page's block as written, then the commands with the run's
    # path alone: predict names folders, evaluate reads the run's own test folder, and the
    # two agree on the test images.
    classes = _photos(tmp_path, kind, test_images)
    block = _marked_block(os.path.join(ROOT, "docs", "own-images.md"), "from-a-script")
    assert len([line for line in block.splitlines() if line.strip()]) <= 6
    result = cli.exec(_on_this_cpu(block), tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^epoch 5, loss .* test acc ", result.stdout, re.M), result.stdout
    config = json.loads((tmp_path / "runs" / "photos" / "config.json").read_text())
    assert config["classes"] == classes and config["preprocess"] == "crop"
    assert config["in_channels"] == (1 if kind == "gray" else 3)
    params = str(tmp_path / "runs" / "photos" / "model.params")
    result = cli.here("evaluate", "--params", params, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    test = tmp_path / "photos" / "test"
    count = 24  # 3 classes of 8, or 2 of 12
    assert f"({count} images of {test}, ResNet-18, resize 32)" in result.stdout
    accuracy = float(result.stdout.split()[2])
    files = sorted(str(p) for p in test.glob("*/*"))
    result = cli.here("predict", "--model", params, "--json", "--topk", "1", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    labels = [json.loads(line)["top"][0]["class"] for line in result.stdout.splitlines()]
    assert len(labels) == count and set(labels) <= set(classes)
    truth = [os.path.basename(os.path.dirname(f)) for f in files]
    assert sum(a == b for a, b in zip(labels, truth)) / count == pytest.approx(accuracy,
                                                                               abs=5e-5)
    # the lower precisions and the export read the script's run as they read a CLI run's
    if kind == "gray":
        result = cli.here("evaluate", "--params", params, "--int8", "--calib-images", "32")
        assert result.returncode == 0, result.stderr
        assert "int8 test acc" in result.stdout and f"images of {test}" in result.stdout
    else:
        result = cli.here("export", "--params", params, "--format", "onnx", "--out",
                          str(tmp_path / "m"), "--check-images", "24")
        assert result.returncode == 0, result.stderr
        assert f"onnxruntime vs MXNet on 24 test images of {test}" in result.stdout
    result = cli.here("predict", "--model", params, "--dtype", "bfloat16", "--topk", "1", files[0])
    if BF16_RUNS:
        assert result.returncode == 0 and \
            result.stdout.split(": ")[1].rsplit(" ", 1)[0] in classes
    else:
        assert result.returncode == 1 and NO_BF16 in result.stderr, result.stderr
    # deploy.md's explanation and report of the run, as written
    shutil.copy(files[0], tmp_path / "new.jpg")
    result = cli.exec(_marked_block(os.path.join(ROOT, "docs", "deploy.md"),
                                    "explain-from-a-script"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "explained" / "new-explained.png").stat().st_size > 10_000
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert report_sections(page) == ["accuracy", "per-class", "confusion", "mistakes", "run",
                                     "made-by"]
    assert f"{count} images of {test}" in page and 'alt="learning curves"' in page


@pytest.mark.slow
def test_the_own_images_rec_script_runs_as_written(tmp_path, cli, test_images):
    classes = _photos(tmp_path, "gray", test_images)
    block = _marked_block(os.path.join(ROOT, "docs", "own-images.md"), "from-a-rec")
    result = cli.exec(_on_this_cpu(block), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "through ImageRecordIter" in result.stdout
    config = json.loads((tmp_path / "runs" / "rec" / "config.json").read_text())
    assert config["classes"] == classes and config["test_data"] == str(tmp_path / "test.rec")
    result = cli.here("evaluate", "--params", str(tmp_path / "runs" / "rec" / "model.params"))
    assert result.returncode == 0, result.stderr
    assert f"(24 images of {tmp_path / 'test.rec'}, ResNet-18, resize 32)" in result.stdout


@pytest.mark.slow
def test_the_notebook_sections_code_runs_in_a_kernel_and_a_second_run_is_one_line(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    page = _read(os.path.join(ROOT, "docs", "training.md"))
    section = page.split("## In a notebook")[1].split("\n## ")[0]
    shapes, train, load = re.findall(r"```python\n(.*?)```", section, re.S)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c)
                                         for c in (shapes, train, train, load)])
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute(env=CHILD_ENV)

    def text(cell):
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    assert "dense0 output shape:\t (1, 5)" in text(nb.cells[0])
    assert re.search(r"epoch 2, loss .* test acc ", text(nb.cells[1]))  # amid the bar
    (error,) = [o for o in nb.cells[2].outputs if o.output_type == "error"]
    assert error.ename == "RunDirTaken" and len(error.traceback) == 1
    assert error.traceback[0] == (
        f"RunDirTaken: runs/nb already holds a run. Continue it with --resume (fit(..., "
        f"resume=True)), or choose another --out directory (run_dir=...).")
    assert "'t-shirt', 'trouser', 'pullover'" in text(nb.cells[3])


def test_the_training_page_lists_every_option_of_train():
    from resnet_gluon.config import option_fields

    page = _read(os.path.join(ROOT, "docs", "training.md"))
    listed = page.split("train --help` lists them with their defaults")[1].split("`.")[0]
    flags = {f.metadata["flag"] or "--" + f.name.replace("_", "-") for f in option_fields()
             if f.name not in ("num_classes", "in_channels")}
    assert {flag for flag in flags if flag not in listed.replace("`", " ").split()} == set()


#: Words of a diary, not of a reference: how the project got here belongs in git's log.
DIARY = re.compile(r"\bissues? #?\d+|\bsessions?\b|before the fix|shipped (?:then|before)|"
                   r"for the record|/work/|/tmp/pytest", re.I)


def _diary(text):
    """The diary words of a page's prose (code blocks aside: ``session`` is onnxruntime's)."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return sorted({m.group(0) for m in DIARY.finditer(prose)})


def test_the_pages_are_reference_not_a_diary():
    pages = PAGES + MORE + [os.path.join(ROOT, "CHANGELOG.md")]
    found = {os.path.relpath(p, ROOT): _diary(_read(p)) for p in pages}
    assert {page: words for page, words in found.items() if words} == {}
    # the check finds what it is for
    assert _diary("Fixed in issue 26, as the session's run showed (`session.run` aside).\n"
                  "```python\nsession = ort.InferenceSession(path)\n```") == ["issue 26",
                                                                            "session"]
