"""Fashion-MNIST from the real files: where they are found, how they are read and checked."""
import gzip
import os
import shutil

import numpy as np
import pytest

from resnet_gluon import data
from resnet_gluon.data import (CLASS_NAMES, BatchIter, find_fashion_mnist, load_fashion_mnist,
                               load_splits, read_idx, split_validation)


def test_real_files_load_with_their_counts_and_shapes():
    images, labels = load_fashion_mnist("train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels).tolist() == [6000] * 10  # the set is balanced
    test_images, test_labels = load_fashion_mnist("test")
    assert test_images.shape == (10000, 28, 28)
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert labels[:5].tolist() == [9, 0, 0, 3, 0]  # ankle boot, t-shirt, t-shirt, dress, t-shirt
    assert [CLASS_NAMES[i] for i in labels[:2]] == ["ankle boot", "t-shirt"]


def _copy_files(dst):
    src = find_fashion_mnist(download=False)
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        shutil.copy(os.path.join(src, name), dst)
    return dst


def test_search_order_root_first(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxhome"))
    root = _copy_files(str(tmp_path / "mine"))
    assert find_fashion_mnist(root, download=False) == root
    mx_dir = _copy_files(str(tmp_path / "mxhome" / "datasets" / "fashion-mnist"))
    assert find_fashion_mnist(download=False) == mx_dir
    assert data.candidate_dirs(root) == [root, mx_dir, data.DEBIAN_DIR]


def test_missing_everywhere_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxhome"))
    monkeypatch.setattr(data, "DEBIAN_DIR", str(tmp_path / "debian"))
    with pytest.raises(FileNotFoundError) as err:
        find_fashion_mnist(download=False)
    message = str(err.value)
    for place in (tmp_path / "mxhome" / "datasets" / "fashion-mnist", tmp_path / "debian"):
        assert f"  - {place}\n" in message
    assert "apt-get install dataset-fashion-mnist" in message


@pytest.mark.parametrize("kind, message", [
    ("missing", "does not exist"), ("file", "is not a directory"),
    ("empty", "holds no Fashion-MNIST files: missing train-images-idx3-ubyte.gz")])
def test_a_named_directory_must_hold_the_data_with_no_fall_back(tmp_path, kind, message):
    # The real files are installed elsewhere (Debian's): they must not stand in for the user's.
    root = tmp_path / "mine"
    if kind == "file":
        root.write_text("not a directory")
    elif kind == "empty":
        root.mkdir()
    with pytest.raises(FileNotFoundError, match=message):
        find_fashion_mnist(str(root), download=False)


def test_root_missing_a_file_is_an_error_of_its_own(tmp_path):
    root = _copy_files(str(tmp_path / "mine"))
    os.remove(os.path.join(root, "t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(FileNotFoundError, match="holds only part of Fashion-MNIST: missing t10k-labels-idx1-ubyte.gz"):
        find_fashion_mnist(root, download=False)


def test_truncated_file_is_named(tmp_path):
    root = _copy_files(str(tmp_path / "mine"))
    path = os.path.join(root, "train-labels-idx1-ubyte.gz")
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=f"{path}: not a readable gzip IDX file"):
        load_fashion_mnist("train", root)


@pytest.mark.parametrize("payload, message", [
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", r"header says shape \(5,\).*truncated or corrupt"),
    (b"\x89PNG\r\n", "bad IDX magic number 89504e47"),
    (b"", "bad IDX magic number \\(empty\\)"),
])
def test_corrupt_idx_is_named(tmp_path, payload, message):
    path = str(tmp_path / "bad-idx1-ubyte.gz")
    with gzip.open(path, "wb") as f:
        f.write(payload)
    with pytest.raises(ValueError, match=message):
        read_idx(path)


def test_batches_are_scaled_and_resized_per_batch():
    images, labels = load_fashion_mnist("test")
    it = BatchIter(images[:100], labels[:100], 32, resize=96)
    batches = list(it)
    assert len(it) == len(batches) == 4
    X, y = batches[0]
    assert X.shape == (32, 1, 96, 96) and X.dtype == np.float32
    assert 0.0 <= X.min().asscalar() and X.max().asscalar() <= 1.0
    assert batches[-1][0].shape == (4, 1, 96, 96)
    assert y.asnumpy().tolist() == labels[:32].tolist()
    native = next(iter(BatchIter(images[:8], labels[:8], 8)))[0]
    np.testing.assert_allclose(native.asnumpy()[:, 0], images[:8] / 255.0, rtol=1e-6)


def test_random_erasing_replaces_one_rectangle_per_chosen_image():
    images, labels = load_fashion_mnist("train")
    batch = images[:500]
    always = BatchIter(batch, labels[:500], 500, erase=1.0)
    erased = always._erase(batch.copy(), np.random.default_rng(3))
    changed = erased != batch
    assert changed.any(axis=(1, 2)).mean() > 0.95  # noise can equal a pixel, rarely all of them
    for img in np.flatnonzero(changed.any(axis=(1, 2)))[:50]:
        rows, cols = np.flatnonzero(changed[img].any(1)), np.flatnonzero(changed[img].any(0))
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert height * width <= 0.4 * 784 + 2 * 28  # rounding of the sides
        # one solid rectangle, not scattered pixels: noise equals a pixel 1 time in 256
        assert changed[img, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].mean() > 0.9
    half = BatchIter(batch, labels[:500], 500, erase=0.5)._erase(batch.copy(),
                                                               np.random.default_rng(3))
    assert 0.4 < (half != batch).any(axis=(1, 2)).mean() < 0.6
    # the same seed erases the same pixels: resume stays exact
    one = BatchIter(images[:256], labels[:256], 128, shuffle=True, augment=True, erase=0.5)
    np.testing.assert_array_equal(next(one.batches(1))[0].asnumpy(),
                                  next(one.batches(1))[0].asnumpy())
    assert not np.array_equal(next(one.batches(1))[0].asnumpy(),
                              next(BatchIter(images[:256], labels[:256], 128, shuffle=True,
                                             augment=True).batches(1))[0].asnumpy())
    with pytest.raises(ValueError, match=r"erase is a probability, in \[0, 1\]; got 1.5"):
        BatchIter(batch, labels[:500], 500, erase=1.5)


def test_resize_is_the_books_resize_then_to_tensor():
    # The book: gdata.vision.transforms.Compose([Resize(96), ToTensor()]) per image.
    from mxnet import nd
    from mxnet.gluon.data.vision import transforms
    images, _ = load_fashion_mnist("test")
    book = transforms.Compose([transforms.Resize(96), transforms.ToTensor()])
    expected = np.stack([book(nd.array(img[:, :, None], dtype="uint8")).asnumpy()
                         for img in images[:64]])
    ours = data.resize_batch(images[:64], 96).asnumpy()
    assert ours.shape == expected.shape == (64, 1, 96, 96)
    assert np.abs(ours - expected).max() <= 1 / 255 + 1e-6  # rounding of OpenCV's fixed point
    assert np.mean(ours == expected) > 0.9  # 94% of pixels are equal, the rest one level off


@pytest.mark.slow
def test_the_validation_split_is_held_out_of_training_and_fixed_by_the_seed():
    images, labels = load_fashion_mnist("train")
    train_x, train_y, val_x, val_y = split_validation(images, labels, 5000, seed=0)
    assert (len(train_x), len(val_x)) == (55000, 5000) and (len(train_y), len(val_y)) == (55000, 5000)
    # no image of the validation set is a training image (compared as raw bytes)
    seen = {x.tobytes() for x in train_x}
    assert not any(x.tobytes() in seen for x in val_x)
    # the same seed gives the same split; another seed another one
    again = split_validation(images, labels, 5000, seed=0)
    np.testing.assert_array_equal(again[2], val_x)
    other = split_validation(images, labels, 5000, seed=1)[2]
    held_out = {v.tobytes() for v in val_x}
    assert sum(x.tobytes() in held_out for x in other) < 1000
    # labels stay with their images, and the held-out classes are balanced to within chance
    assert np.bincount(val_y, minlength=10).min() > 400
    splits = load_splits(64, limit_train=1000, val_split=5000, seed=0)
    np.testing.assert_array_equal(splits.val.images, val_x)
    np.testing.assert_array_equal(splits.train.images, train_x[:1000])  # the limit comes after
    assert load_splits(64, limit_train=10).val is None
    with pytest.raises(ValueError, match="val_split must leave training examples: got 60000 "
                                         "of 60000"):
        split_validation(images, labels, 60000)
    with pytest.raises(ValueError, match="val_split must be"):
        split_validation(images, labels, -1)


@pytest.mark.parametrize("kwargs, message", [
    # before: one training image, 59,999 validated, not a word
    (dict(limit_train=512, val_split=59999), "limit_train 512 asks for more training images "
                                             "than the 1 left after holding out 59999"),
    (dict(val_split=59990), "leaves 10 to train on, less than one batch of 64"),
])
def test_a_validation_split_that_leaves_too_little_to_train_on_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_splits(64, **kwargs)


def test_colour_images_batch_as_gray_ones_do_channel_by_channel():
    images, labels = load_fashion_mnist("test")
    gray, labels = images[:96], labels[:96]
    colour = np.repeat(gray[..., None], 3, axis=3)  # (N, H, W, 3)
    colour[..., 1] //= 2  # channels that differ, so that their order shows
    X = data.resize_batch(colour[:4], 56)
    assert X.shape == (4, 3, 56, 56)
    np.testing.assert_array_equal(X[:, 0].asnumpy(),
                                  data.resize_batch(gray[:4], 56)[:, 0].asnumpy())
    np.testing.assert_array_equal(X[:, 1].asnumpy(),
                                  data.resize_batch(gray[:4] // 2, 56)[:, 0].asnumpy())
    # The same seed, the same shifts and flips, whatever the channels.
    kwargs = dict(batch_size=32, shuffle=True, resize=40, augment=True, seed=3)
    for (a, ya), (b, yb) in zip(BatchIter(gray, labels, **kwargs).batches(1),
                                BatchIter(colour, labels, **kwargs).batches(1)):
        assert b.shape == (32, 3, 40, 40)
        np.testing.assert_array_equal(a[:, 0].asnumpy(), b[:, 0].asnumpy())
        np.testing.assert_array_equal(ya.asnumpy(), yb.asnumpy())
    erased = next(BatchIter(colour, labels, 32, erase=1.0, seed=1).batches(0))[0]
    assert erased.shape == (32, 3, 28, 28)
    rebuilt = next(BatchIter(colour, labels, 32, erase=1.0, seed=1).batches(0))[0]
    np.testing.assert_array_equal(erased.asnumpy(), rebuilt.asnumpy())


def test_batches_are_normalised_with_the_statistics_given():
    images, labels = load_fashion_mnist("test")
    plain = next(BatchIter(images[:64], labels[:64], 64).batches(0))[0].asnumpy()
    mean, std = [0.286], [0.353]
    normed = next(BatchIter(images[:64], labels[:64], 64, normalize=(mean, std)).batches(0))[0]
    np.testing.assert_allclose(normed.asnumpy(), (plain - 0.286) / 0.353, rtol=1e-5, atol=1e-6)
    for bad in (([0.5, 0.5], [0.2, 0.2]), ([0.5], [0.0])):
        with pytest.raises(ValueError, match=r"one value per channel \(1\) and std > 0"):
            BatchIter(images[:64], labels[:64], 64, normalize=bad)
