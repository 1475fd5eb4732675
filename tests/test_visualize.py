"""What the network sees: Grad-CAM, feature maps and the plots of the what_resnet_sees notebook."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from common import BF16_RUNS, NO_BF16, TEN_SHAPES  # noqa: E402
from resnet_gluon import build_resnet18  # noqa: E402
from resnet_gluon.data import CLASS_NAMES, resize_batch  # noqa: E402
from resnet_gluon.pretrained import load_pretrained  # noqa: E402
from resnet_gluon.visualize import (feature_maps, grad_cam, plot_confusion,  # noqa: E402
                                    plot_feature_maps, plot_grad_cam, plot_per_class,
                                    plot_predictions)


def test_feature_maps_are_the_shapes_of_cell_8():
    net = build_resnet18()
    net.initialize()
    maps = feature_maps(net, np.random.uniform(size=(1, 1, 224, 224)))
    assert [str(out.shape) for _, out in maps] == TEN_SHAPES
    assert maps[0][0] == net[0].name
    fig = plot_feature_maps(maps, channels=4)
    assert len(fig.axes) == 4 * 8  # the eight layers that are still pictures (not 1x1, flat)
    plt.close(fig)
    with pytest.raises(ValueError, match=r"got shape \(224, 224\); add the axes"):
        feature_maps(net, np.zeros((224, 224)))


@pytest.fixture(scope="module")
def trained():
    return load_pretrained()[0]  # the shipped weights: a net that has learnt where things are


def test_grad_cam_is_non_negative_input_sized_and_moves_with_the_object(trained, test_images):
    images, labels = test_images
    X = resize_batch(images[:20], 64).asnumpy()
    cams = grad_cam(trained, X[:8])
    assert cams.shape == (8, 64, 64) and cams.dtype == np.float32
    assert cams.min() >= 0 and cams.max() == 1
    # Each image on a canvas 32 pixels wider, at its left edge and then at its right edge:
    # the centre of the class's map moves right with it, by about the 32 pixels.
    columns = np.arange(96)
    moves = []
    for image, label in zip(X, labels[:20]):
        canvas = np.zeros((2, 1, 64, 96), dtype=np.float32)
        canvas[0, 0, :, :64], canvas[1, 0, :, 32:] = image[0], image[0]
        left, right = grad_cam(trained, canvas, [label, label])
        centre = lambda cam: (cam.sum(axis=0) * columns).sum() / cam.sum()
        moves.append(centre(right) - centre(left))
    assert min(moves) > 0 and 24 <= np.median(moves) <= 40, np.round(moves, 1)
    # Another class's map is another map; one class per image is required.
    assert not np.array_equal(grad_cam(trained, X[:1], [labels[0]]),
                              grad_cam(trained, X[:1], [(labels[0] + 5) % 10]))
    with pytest.raises(ValueError, match=r"one class per image \(1\), got \(2,\)"):
        grad_cam(trained, X[:1], [1, 2])
    ax = plot_grad_cam(X[0], cams[0], title="ankle boot")
    assert ax.get_title() == "ankle boot" and len(ax.images) == 2
    plt.close(ax.figure)


def test_confusion_heat_map_and_per_class_bars():
    confusion = np.diag(np.arange(1, 11)) + 1  # every class confused once with every other
    ax = plot_confusion(confusion, CLASS_NAMES)
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown, confusion / confusion.sum(axis=1, keepdims=True))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASS_NAMES)
    plt.close(ax.figure)
    ax = plot_per_class(confusion, CLASS_NAMES)
    heights = [bar.get_height() for bar in ax.patches]
    np.testing.assert_allclose(heights, [(k + 1) / (k + 10) for k in range(1, 11)])
    plt.close(ax.figure)


def test_prediction_grid_marks_mistakes(test_images):
    images, labels = test_images
    predictions = labels[:5].copy()
    predictions[2] = (labels[2] + 1) % 10
    fig = plot_predictions(images[:5], labels[:5], predictions, CLASS_NAMES, ncols=3)
    axes = fig.axes
    assert len(axes) == 6 and not axes[5].axison
    assert axes[2].title.get_color() == "red" and axes[2].get_title().startswith(
        f"{CLASS_NAMES[labels[2]]}\nx {CLASS_NAMES[predictions[2]]}")
    assert [ax.title.get_color() for i, ax in enumerate(axes[:5]) if i != 2] == ["black"] * 4
    plt.close(fig)


def test_bad_class_indexes_and_batches_are_refused(trained):
    X = np.zeros((2, 1, 64, 64), np.float32)
    assert grad_cam(trained, X, [0, 9]).shape == (2, 64, 64)
    for index in ([10, 1], [-1, 1]):  # before: all-zero maps
        with pytest.raises(ValueError, match=r"is not a class of the net: it has 10 outputs"):
            grad_cam(trained, X, index)
    with pytest.raises(TypeError, match="whole class numbers"):  # before: truncated
        grad_cam(trained, X, [1.7, 2.0])
    with pytest.raises(ValueError, match="initialised for 1-channel input but got 3"):
        grad_cam(trained, np.zeros((2, 3, 64, 64), np.float32))
    for f in (grad_cam, feature_maps):
        with pytest.raises(ValueError, match="at least one image"):
            f(trained, np.zeros((0, 1, 64, 64), np.float32))
    if BF16_RUNS:
        bf16, _ = load_pretrained(dtype="bfloat16")
        with pytest.raises(TypeError, match="expected the sequential net"):
            grad_cam(bf16, X)
    else:
        with pytest.raises(RuntimeError, match=NO_BF16):
            load_pretrained(dtype="bfloat16")
