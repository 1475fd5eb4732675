"""Evaluation: accuracy, per-class accuracy, the confusion matrix, TTA (flips and shifts), the evaluate command."""
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from common import TINY
from resnet_gluon import build_resnet
from resnet_gluon.data import BatchIter, load_fashion_mnist, split_validation
from resnet_gluon.evaluate import evaluate, predict_tta, tta_views
from resnet_gluon.trained import load_trained


def test_evaluate_reports_per_class_accuracy_and_confusion():
    images, labels = load_fashion_mnist("test")
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    result = evaluate(net, BatchIter(images[:300], labels[:300], 100, resize=28))
    assert result.confusion.shape == (10, 10) and result.count == 300
    assert result.confusion.sum(axis=1).tolist() == np.bincount(labels[:300], minlength=10).tolist()
    assert result.accuracy == pytest.approx(np.trace(result.confusion) / 300)


def test_flip_test_time_augmentation_averages_an_image_and_its_mirror():
    images, labels = load_fashion_mnist("test")
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    X = nd.array(images[:200, None], dtype="float32") / 255
    scores = nd.softmax(net(X)) + nd.softmax(net(X.flip(axis=3)))
    expected = scores.argmax(axis=1).asnumpy().astype(np.int64)
    tta = evaluate(net, BatchIter(images[:200], labels[:200], 50, resize=28), flip=True)
    assert tta.accuracy == pytest.approx(float(np.mean(expected == labels[:200])))
    # mirroring the test images changes nothing once both views are averaged
    mirrored = evaluate(net, BatchIter(images[:200, :, ::-1].copy(), labels[:200], 50, resize=28),
                        flip=True)
    np.testing.assert_array_equal(mirrored.confusion, tta.confusion)


def _section(lines, title, end=None):
    """The lines after the one starting with ``title``, up to the one starting with ``end``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 1
    stop = next((i for i, line in enumerate(lines) if end and i >= start and line.startswith(end)),
                len(lines))
    return lines[start:stop]


def test_evaluate_cli(cli, small_run):
    result = cli.here("evaluate", "--params", str(small_run / "model.params"),
                 "--limit-test", "500")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert re.match(r"test acc 0\.\d{4} \(500 images, ResNet-18, resize 28\)$", out[0])
    per_class = _section(out, "per-class accuracy:", "confusion matrix")
    assert per_class[0].split()[0] == "t-shirt" and per_class[-1].split()[:2] == ["ankle", "boot"]
    assert len(per_class) == 10
    header, *rows = _section(out, "confusion matrix (rows: true class, columns: predicted):")
    assert header.split()[0] == "t-shirt"
    rows = [list(map(int, line.split()[-10:])) for line in rows]
    assert len(rows) == 10 and sum(map(sum, rows)) == 500


def test_evaluate_cli_names_an_architecture_mismatch(cli, small_run, tmp_path):
    result = cli.here("evaluate", "--params", str(small_run / "model.params"), "--depth", "34",
                 "--limit-test", "10")
    assert result.returncode == 2
    assert "does not fit ResNet-34" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("bad", [-1, 12, 2.5])
def test_labels_outside_the_classes_are_named(bad):
    images, labels = load_fashion_mnist("test")
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    y = labels[:50].astype(np.float32)
    y[7] = bad
    with pytest.raises(ValueError, match=f"evaluate got the label {bad:g}, but the net has 10 "
                                         f"classes, labelled 0 to 9"):
        evaluate(net, [(nd.array(images[:50, None] / 255.0, dtype="float32"), nd.array(y))])


def test_test_time_augmentation_is_the_mean_prediction_over_the_moved_and_mirrored_images(
        test_images):
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    images = test_images[0][:8]
    X = nd.array(images[:, None] / 255.0)
    # The views, built by hand: the image and its mirror, each also moved by 2 pixels
    # right, left, down and up, zeros filling in.
    by_hand = []
    for img in (images, images[:, :, ::-1]):
        padded = np.pad(img, ((0, 0), (2, 2), (2, 2)))
        by_hand += [img, padded[:, 0:28, 2:30], padded[:, 4:32, 2:30], padded[:, 2:30, 0:28],
                    padded[:, 2:30, 4:32]]
    expected = np.mean([nd.softmax(net(nd.array(v[:, None] / 255.0))).asnumpy()
                        for v in by_hand], axis=0)
    got = predict_tta(net, X, flip=True, shift=2).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert len(tta_views(X, flip=True, shift=2)) == 10 and len(tta_views(X, shift=1)) == 5
    result = evaluate(net, [(X, nd.array(test_images[1][:8]))], flip=True, shift=2)
    np.testing.assert_array_equal(result.predictions, expected.argmax(axis=1))


@pytest.mark.slow
def test_evaluate_cli_on_a_runs_validation_split(cli, tmp_path):
    # What a run with --val-split 300 --seed 4 held out: chosen on, never the test set.
    run = tmp_path / "run"
    result = cli.here("train", "--out", str(run), *TINY, "--epochs", "1", "--val-split", "300",
                      "--seed", "4")
    assert result.returncode == 0, result.stderr
    params = str(run / "model.params")
    result = cli.here("evaluate", "--params", params, "--val-split", "300", "--seed", "4", "--tta")
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert re.match(r"val acc 0\.\d{4} \(300 validation images held out with seed 4, "
                    r"ResNet-18, resize 28, with flip test-time augmentation\)$", line), line
    *_, images, labels = split_validation(*load_fashion_mnist("train"), 300, 4)
    net, info = load_trained(params)
    expected = evaluate(net, BatchIter(images, labels, 100, resize=28), flip=True).accuracy
    assert line.split()[2] == f"{expected:.4f}"


@pytest.mark.parametrize("source, why", [
    ([], "the shipped weights were trained on all 60,000 training images"),
    (["--params", "RUN"], "held out 0 training images with seed 0, so these are not images "
                          "it did not train on; it has no validation images"),
    (["--params", "RUN", "--seed", "3"], "held out 0 training images with seed 0"),
])
def test_a_validation_split_the_weights_were_not_kept_from_is_refused(cli, small_run,
                                                                       source, why):
    # Before: "val acc 0.9700 (200 validation images held out ...)" of images it trained on.
    args = [str(small_run / "model.params") if a == "RUN" else a for a in source]
    result = cli.here("evaluate", *args, "--val-split", "200")
    assert result.returncode == 2 and "val acc" not in result.stdout, result.stdout
    assert why in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_test_time_shift_must_be_smaller_than_the_image():
    X = nd.ones((2, 1, 28, 28))
    assert len(tta_views(X, flip=True, shift=27)) == 10
    for shift in (28, 100):  # before: accepted, every moved view all padding
        with pytest.raises(ValueError, match="shift must be smaller than the 28x28 images"):
            tta_views(X, shift=shift)
