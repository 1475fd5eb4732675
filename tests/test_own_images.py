"""Your own images through every command: a folder of real Fashion-MNIST PNGs in the book's
layout, the same packed as RecordIO, fine-tuning, and a colour folder of real photographs."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common import (BF16_RUNS, NO_BF16, assert_same_params, kill_when, look_in_browser,
                    report_sections, write_class_folders)
from resnet_gluon.checkpoint import find_checkpoints
from resnet_gluon.data import CLASS_NAMES, BatchIter
from resnet_gluon.config import TrainConfig
from resnet_gluon.folders import load_image_folder
from resnet_gluon.recordio import RecordBatches, pack
from resnet_gluon.sources import open_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Four Fashion-MNIST classes; one folder name has a space, files have spaces and umlauts.
LABELS = (0, 5, 8, 9)
CLASSES = sorted(CLASS_NAMES[i] for i in LABELS)  # ankle boot, bag, sandal, t-shirt
TINY = ["--resize", "28", "--batch-size", "32", "--no-progress"]
#: TINY as a recipe.
SMALL = TrainConfig(resize=28, batch_size=32)


def _write(root, images, labels, per_class, start=0):
    write_class_folders(root, images, labels, LABELS, per_class, start, name="bild ü {i}.png")


@pytest.fixture(scope="module")
def book(tmp_path_factory, test_images):
    """ROOT/train (48 real images a class) and ROOT/test (16 others), plus a stray note."""
    images, labels = test_images
    root = tmp_path_factory.mktemp("own") / "fashion"
    _write(root / "train", images, labels, 48)
    _write(root / "test", images, labels, 16, start=48)
    (root / "train" / "bag" / "notes.txt").write_text("not an image")
    return root


def _lines(result):
    return [line for line in result.stdout.splitlines() if line.startswith("epoch")]


@pytest.mark.slow
def test_a_folder_trains_and_every_command_uses_its_classes(cli, book, tmp_path):
    run = tmp_path / "run"
    result = cli.here("train", "--data", str(book), "--out", str(run), "--epochs", "2", *TINY)
    assert result.returncode == 0, result.stderr
    assert f"decoded 192 images of 4 classes from {book / 'train'}" in result.stdout
    assert (f"skipped 1 files of {book / 'train'} that are not PNG, JPEG or BMP images, "
            f"first {book / 'train' / 'bag' / 'notes.txt'}") in result.stdout
    assert len(_lines(result)) == 2 and "test acc" in _lines(result)[0]
    config = json.loads((run / "config.json").read_text())
    assert config["classes"] == CLASSES and config["num_classes"] == 4
    assert config["in_channels"] == 1 and config["preprocess"] == "crop"
    assert config["test_data"] == str(book / "test")
    train = load_image_folder(str(book / "train"), 28)
    assert config["mean"] == pytest.approx([train.images.mean() / 255])
    # evaluate reads the run's test folder, predict names the folder's classes
    result = cli.here("evaluate", "--params", str(run / "model.params"))
    assert result.returncode == 0, result.stderr
    assert f"(64 images of {book / 'test'}, ResNet-18, resize 28)" in result.stdout
    assert "ankle boot" in result.stdout and "trouser" not in result.stdout
    image = book / "test" / "bag" / "bild ü 0.png"
    result = cli.here("predict", "--model", str(run / "model.params"), "--topk", "4", str(image))
    assert result.returncode == 0, result.stderr
    named = result.stdout.split(": ", 1)[1].split(", ")
    assert sorted(n.rsplit(" ", 1)[0] for n in named) == CLASSES
    # INT8 calibrates on the run's training folder, bfloat16 predicts with its classes
    result = cli.here("evaluate", "--params", str(run / "model.params"), "--int8",
                      "--calib-images", "64")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("int8 test acc 0.")
    assert "(calibrated on 64 training images)" in result.stdout
    result = cli.here("predict", "--model", str(run / "model.params"), "--dtype", "bfloat16",
                      "--topk", "1", str(image))
    if BF16_RUNS:
        assert result.returncode == 0 and \
            result.stdout.split(": ")[1].rsplit(" ", 1)[0] in CLASSES
    else:
        assert result.returncode == 1 and NO_BF16 in result.stderr, result.stderr
    # what the net sees: the image as the run read it, and the report of the run in a browser
    result = cli.here("predict", "--model", str(run / "model.params"), "--explain",
                      str(tmp_path / "seen"), "--json", str(image))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["explanation"] == str(tmp_path / "seen" /
                                                           "bild ü 0-explained.png")
    page = tmp_path / "report.html"
    result = cli.here("evaluate", "--params", str(run / "model.params"), "--report", str(page),
                      "--mistakes", "4")
    assert result.returncode == 0, result.stderr
    shot, loaded, count, dom = look_in_browser(page, tmp_path)
    assert loaded == count == 7 and shot.std() > 20  # bars, matrix, 4 mistakes, curves
    assert report_sections(dom)[-2:] == ["run", "made-by"]
    assert 'alt="learning curves"' in dom and "<td>epochs</td><td>2</td>" in dom
    assert f"<td>data</td><td>{book}</td>" in dom
    assert "<td>train images (images.json)</td><td>192</td>" in dom
    # a run whose folder has moved: export reads its check images first and writes nothing
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    config.update(data=str(tmp_path / "nowhere"), test_data=str(tmp_path / "nowhere" / "test"))
    (moved / "config.json").write_text(json.dumps(config))
    result = cli.here("export", "--params", str(moved / "model.params"), "--format", "onnx",
                      "--out", str(tmp_path / "exported"))
    assert result.returncode == 2 and "is not there any more" in result.stderr, result.stderr
    assert not [p.name for p in tmp_path.iterdir() if "exported" in p.name]


@pytest.mark.slow
def test_resume_on_a_folder_after_sigkill_is_bit_identical(cli, book, tmp_path):
    args = ["--data", str(book), "--epochs", "2", "--checkpoint-every", "3", "--augment",
            "--momentum", "0.9", "--random-erasing", "0.5", *TINY]
    reference = tmp_path / "reference"
    assert cli.here("train", "--out", str(reference), *args).returncode == 0
    run = tmp_path / "run"
    proc = cli.popen("train", "--out", str(run), *args)
    kill_when(proc, run, lambda found: len(found) >= 1)
    step = int(os.path.basename(find_checkpoints(str(run))[-1]).split("-")[2])
    assert step > 0, "the kill came at an epoch's end, not inside one"
    result = cli.here("train", "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout
    assert (run / "model.params").read_bytes() == (reference / "model.params").read_bytes()
    assert_same_params(run / "model.params", reference / "model.params")


def test_a_pack_streams_the_folders_images(book, tmp_path):
    info = pack(str(book / "train"), str(tmp_path / "train"), size=28)
    assert (info.classes, info.count, info.channels, info.size) == (tuple(CLASSES), 192, 1, 28)
    folder = load_image_folder(str(book / "train"), 28)
    stats = folder.channel_stats()
    assert info.mean == pytest.approx(stats[0]) and info.std == pytest.approx(stats[1])
    records = RecordBatches(str(tmp_path / "train.rec"), 50, 28, 1, stats)
    X = np.concatenate([x.asnumpy() for x, _ in records.batches(0)])
    y = np.concatenate([y.asnumpy() for _, y in records.batches(0)])
    assert len(records) == 4 and X.shape == (192, 1, 28, 28)
    # pack wrote the files in a seeded order; ImageRecordIter reads them as BatchIter does
    order = np.random.default_rng(0).permutation(192)
    ours = BatchIter(folder.images[order], folder.labels[order], 192, normalize=stats)
    X_ref, y_ref = next(iter(ours))
    np.testing.assert_allclose(X, X_ref.asnumpy(), atol=1e-5)
    np.testing.assert_array_equal(y, y_ref.asnumpy())
    # two workers' shards are the whole set, once
    shards = [np.concatenate([y.asnumpy() for _, y in RecordBatches(
        str(tmp_path / "train.rec"), 32, 28, 1, stats, shuffle=True, num_parts=2,
        part_index=k).batches(0)]) for k in (0, 1)]
    assert sorted(np.concatenate(shards).tolist()) == sorted(folder.labels.tolist())
    assert [len(s) for s in shards] == [96, 96] and len(set(shards[0])) == 4


def test_a_bad_image_stops_a_pack_and_leaves_nothing(book, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(book / "train", root)
    whole = (root / "bag" / "bild ü 3.png").read_bytes()
    (root / "bag" / "bild ü 3.png").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match="bild ü 3.png: the image is truncated or corrupt"):
        pack(str(root), str(tmp_path / "out" / "train"), workers=2)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.slow
def test_pack_then_train_on_the_rec(cli, book, tmp_path):
    for split in ("train", "test"):
        result = cli.here("pack", str(book / split), str(tmp_path / split), "--resize", "28")
        assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "64 images of 4 classes (gray, 28x28)" in result.stdout
    result = cli.here("pack", str(book / "test"), str(tmp_path / "test"))
    assert result.returncode == 2 and "exists; remove it" in result.stderr
    run = tmp_path / "run"
    result = cli.here("train", "--data", str(tmp_path / "train.rec"), "--test-data",
                      str(tmp_path / "test.rec"), "--out", str(run), "--epochs", "1", *TINY)
    assert result.returncode == 0, result.stderr
    assert "through ImageRecordIter" in result.stdout and len(_lines(result)) == 1
    assert json.loads((run / "config.json").read_text())["classes"] == CLASSES
    result = cli.here("evaluate", "--params", str(run / "model.params"))
    assert f"(64 images of {tmp_path / 'test.rec'}" in result.stdout, result.stderr
    os.remove(tmp_path / "test.idx")
    result = cli.here("evaluate", "--params", str(run / "model.params"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"has no {tmp_path / 'test.idx'} (index) beside it" in result.stderr


@pytest.mark.slow
def test_fine_tuning_from_the_shipped_weights(cli, book, tmp_path):
    run = tmp_path / "run"
    result = cli.here("train", "--data", str(book), "--init", "pretrained", "--lr-body", "0.1",
                      "--out", str(run), "--epochs", "1", "--resize", "64", "--batch-size", "32",
                      "--no-progress")
    assert result.returncode == 0, result.stderr
    assert ("starting from the weights of pretrained; 9.weight: new, (4, 512) (its classes are "
            "others)") in result.stdout
    config = json.loads((run / "config.json").read_text())
    assert (config["init"], config["lr_body"]) == ("pretrained", 0.1)
    result = cli.here("train", "--data", str(book), "--init", "pretrained", "--depth", "34",
                      "--out", str(tmp_path / "r34"), "--epochs", "1", *TINY)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "the trained weights do not map onto this net" in result.stderr


@pytest.mark.parametrize("change, message", [
    (lambda root: os.rename(root / "test" / "bag", root / "test" / "bags"),
     "differ from those of .*only in training \\['bag'\\], only in the test folder "
     "\\['bags'\\]"),
    (lambda root: os.rename(root / "test", root / "elsewhere"),
     "has no test folder .*--val-split N"),
])
def test_a_test_folder_that_does_not_fit_is_named(book, tmp_path, change, message):
    root = tmp_path / "copy"
    shutil.copytree(book, root)
    change(root)
    with pytest.raises(ValueError, match=message):
        open_source(str(root)).training(SMALL)


def test_the_books_kaggle_layout_tests_on_valid(book, tmp_path):
    # d2l's Kaggle CIFAR-10 chapter: train/, valid/, train_valid/ and test/unknown/
    root = tmp_path / "kaggle"
    shutil.copytree(book / "train", root / "train")
    shutil.copytree(book / "test", root / "valid")
    shutil.copytree(book / "train", root / "train_valid")
    shutil.copytree(book / "test" / "bag", root / "test" / "unknown")
    source = open_source(str(root))
    assert source.ref.test == str(root / "valid") and source.classes == CLASSES
    assert source.training(SMALL).splits.test.num_examples == 64


def test_a_folder_without_test_holds_images_out(book):
    source = open_source(str(book / "train"))
    splits = source.training(TrainConfig(resize=28, batch_size=32, val_split=40, seed=3)).splits
    assert splits.test is None and splits.val.num_examples == 40
    assert splits.train.num_examples == 152 and source.ref.test is None


@pytest.mark.slow
def test_a_colour_folder_trains_and_onnxruntime_gives_mxnets_labels(cli, photos, tmp_path):
    import onnx
    import onnxruntime

    run = tmp_path / "run"
    result = cli.here("train", "--data", str(photos), "--out", str(run), "--epochs", "2",
                      "--resize", "32", "--batch-size", "16", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "(colour, 32x32)" in result.stdout
    result = cli.here("export", "--params", str(run / "model.params"), "--format", "onnx",
                      "--out", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert "input 'data': N x 3 x 32 x 32" in result.stdout
    files = sorted(str(p) for p in (photos / "test").glob("*/*.jpg"))
    result = cli.here("predict", "--model", str(run / "model.params"), "--json", "--topk", "1",
                      *files)
    mxnet_labels = [json.loads(line)["top"][0]["class"] for line in result.stdout.splitlines()]
    # onnxruntime, with only the file's metadata and Pillow: what a server without us does
    model = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["preprocess"] == "crop" and meta["classes"] == ["china", "flower"]
    batch = []
    for path in files:
        im = Image.open(path).convert("RGB")
        scale = meta["resize"] / min(im.size)
        im = im.resize((max(32, round(im.size[0] * scale)), max(32, round(im.size[1] * scale))),
                       Image.BILINEAR)
        left, top = (im.size[0] - 32) // 2, (im.size[1] - 32) // 2
        x = np.asarray(im.crop((left, top, left + 32, top + 32)), np.float32) / 255
        batch.append(((x - meta["mean"]) / meta["std"]).transpose(2, 0, 1))
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"),
                                           providers=["CPUExecutionProvider"])
    out = session.run(None, {"data": np.stack(batch).astype(np.float32)})[0]
    assert [meta["classes"][i] for i in out.argmax(1)] == mxnet_labels
    assert len(mxnet_labels) == 16
    # docs/own-images.md's onnxruntime block, as written, on one of the photos
    page = open(os.path.join(ROOT, "docs", "own-images.md"), encoding="utf-8").read()
    block = page.split("<!-- own-onnxruntime -->\n```python\n")[1].split("```")[0]
    shutil.copy(tmp_path / "m.onnx", tmp_path / "model.onnx")
    shutil.copy(files[-1], tmp_path / "photo.jpg")
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == mxnet_labels[-1]


@pytest.mark.slow
def test_bad_own_data_on_the_command_line_is_one_line(cli, book, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(book, root)
    os.rename(root / "test" / "bag", root / "test" / "bags")
    cases = [
        (["train", "--data", str(root), *TINY], "only in the test folder ['bags']"),
        (["train", "--data", str(book), "--data-dir", str(tmp_path), *TINY],
         "name two data sets; give one"),
        (["train", "--channels", "3", *TINY], "give --data PATH too"),
        (["evaluate", "--data", str(book)], "this net was trained on Fashion-MNIST"),
        (["train", "--data", str(tmp_path / "none.rec"), *TINY], "not a .rec file"),
    ]
    for argv, message in cases:
        result = cli.here(*argv)
        assert result.returncode == 2, (argv, result.stderr)
        lines = result.stderr.splitlines()  # evaluate says first which weights it uses
        assert message in lines[-1] and "Traceback" not in result.stderr, result.stderr
        assert len(lines) == (2 if argv[0] == "evaluate" else 1), result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_resume_refuses_a_folder_whose_classes_changed(cli, book, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(book, root)
    run = tmp_path / "run"
    args = ["--data", str(root), "--epochs", "2", *TINY]
    proc = cli.popen("train", "--out", str(run), "--checkpoint-every", "2", *args)
    kill_when(proc, run, lambda found: len(found) >= 1)
    for split in ("train", "test"):
        os.rename(root / split / "bag", root / split / "bags")
    result = cli.here("train", "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 2 and "was trained on the classes" in result.stderr
    assert find_checkpoints(str(run)), "the checkpoint must survive the refusal"


def test_an_edited_or_partial_pack_json_is_one_line_naming_the_key(book, tmp_path):
    pack(str(book / "test"), str(tmp_path / "test"), size=28)
    meta = tmp_path / "test.json"
    whole = json.loads(meta.read_text())
    cases = [({**whole, "channels": 3}, "expected a number per channel (with 'channels' 3)"),
             ({k: v for k, v in whole.items() if k != "std"}, "has no 'std' (a positive "
                                                                "number per channel)"),
             ({**whole, "mean": [0.5]}, "was changed after pack wrote it"),
             ([1, 2], "holds a JSON list, not the object pack writes")]
    for values, message in cases:
        meta.write_text(json.dumps(values))
        with pytest.raises(ValueError, match=re.escape(message)) as caught:
            open_source(str(tmp_path / "test.rec"))
        assert "\n" not in str(caught.value) and "pack the folder again" in str(caught.value)
    meta.write_text(json.dumps(whole))
    assert open_source(str(tmp_path / "test.rec")).classes == CLASSES


def test_a_second_pack_to_one_prefix_is_refused_while_the_first_writes(book, tmp_path):
    from resnet_gluon.recordio import _PrefixLock

    with _PrefixLock(str(tmp_path / "train")):  # as a pack running in another process
        with pytest.raises(ValueError, match="another pack is writing .*train; wait for it"):
            pack(str(book / "test"), str(tmp_path / "train"), size=28)
    assert os.listdir(tmp_path) == []  # neither left anything: no records, no lock file
    assert str(pack(str(book / "test"), str(tmp_path / "train"), size=28)) == (
        "64 images of 4 classes (gray, 28x28)")
    assert sorted(os.listdir(tmp_path)) == ["train.idx", "train.json", "train.rec"]


def test_limits_on_a_rec_take_a_stratified_sample_of_its_records(book, tmp_path):
    for split in ("train", "test"):
        pack(str(book / split), str(tmp_path / split), size=28)
    source = open_source(str(tmp_path / "train.rec"), test=str(tmp_path / "test.rec"))
    made = source.training(source.configure(TrainConfig(epochs=1, batch_size=8, limit_train=20,
                                                        limit_test=8)))
    train = np.concatenate([y.asnumpy() for _, y in made.splits.train.batches(0)])
    test = np.concatenate([y.asnumpy() for _, y in made.splits.test])
    assert np.bincount(train.astype(int)).tolist() == [5, 5, 5, 5]
    assert np.bincount(test.astype(int)).tolist() == [2, 2, 2, 2]
    assert any(n.startswith("--limit-train 20: 20 images, a seeded sample stratified by class")
               for n in made.notes)
    # the sample's pixels are the records', as ImageRecordIter streams them
    whole = RecordBatches(str(tmp_path / "test.rec"), 64, 28, 1, made.inputs.normalize)
    X, y = (np.concatenate([b[k].asnumpy() for b in whole.batches(0)]) for k in (0, 1))
    Xs, ys = next(iter(made.splits.test))  # the 8 sampled test images, one batch
    found = [int(np.flatnonzero(np.abs(X - x).reshape(64, -1).max(1) < 1e-4)[0]) for x in
             Xs.asnumpy()]
    assert y[found].tolist() == ys.asnumpy().tolist()
    with pytest.raises(ValueError, match="--val-split is for image folders"):
        source.training(source.configure(TrainConfig(val_split=8)))
