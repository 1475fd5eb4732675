"""Your own images: a folder of class sub-folders (real Fashion-MNIST images written as files),
read as MXNet's ImageFolderDataset reads it, decoded once, and bad folders named."""
import os

import numpy as np
import pytest
from mxnet import gluon
from PIL import Image

from resnet_gluon.folders import list_image_folder, load_image_folder

CLASSES = ["ankle boot", "bag", "t-shirt"]  # sorted, one with a space


@pytest.fixture
def folder(tmp_path, test_images):
    """ROOT/CLASS/IMAGE.png: 4 real test images of each of three classes, plus a note."""
    images, labels = test_images
    root = tmp_path / "data"
    for name, label in zip(CLASSES, (9, 8, 0)):
        (root / name).mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(labels == label)[:4]):
            Image.fromarray(images[index]).save(root / name / f"{i}.png")
    (root / "bag" / "notes.txt").write_text("not an image")
    return root


def test_the_folder_is_read_as_image_folder_dataset_reads_it(folder, test_images):
    files, labels, classes, ignored = list_image_folder(str(folder))
    with pytest.warns(UserWarning, match="Ignoring .*notes.txt"):  # MXNet skips it too
        theirs = gluon.data.vision.ImageFolderDataset(str(folder))
    assert classes == theirs.synsets == CLASSES
    assert [(f, l) for f, l in zip(files, labels)] == [(f, l) for f, l in theirs.items]
    assert ignored == [str(folder / "bag" / "notes.txt")]
    data = load_image_folder(str(folder), 28)
    assert data.images.shape == (12, 28, 28) and data.images.dtype == np.uint8
    assert data.channels == 1 and data.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    images, labels = test_images
    first_boot = images[np.flatnonzero(labels == 9)[0]]
    np.testing.assert_array_equal(data.images[0], first_boot)  # 28x28 kept as it is
    mean, std = data.channel_stats()
    assert len(mean) == 1 and 0 < mean[0] < 1 and 0 < std[0] < 1


def test_sizes_and_colours_become_squares_of_one_kind(folder):
    wide = np.asarray(Image.open(folder / "bag" / "0.png").resize((112, 56)))
    Image.fromarray(wide).save(folder / "bag" / "wide.png")
    tint = np.stack([wide, wide // 2, np.zeros_like(wide)], axis=2)  # an orange bag
    Image.fromarray(tint).save(folder / "bag" / "tinted.jpg", quality=95)
    data = load_image_folder(str(folder), 32)
    assert data.images.shape == (14, 32, 32, 3) and data.channels == 3  # one colour image
    gray = data.images[0]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    tinted = data.images[data.files.index(str(folder / "bag" / "tinted.jpg"))]
    assert tinted[..., 0].mean() > 1.5 * tinted[..., 1].mean()  # still orange
    assert load_image_folder(str(folder), 32, channels=1).images.shape == (14, 32, 32)
    # 112x56: the shorter side to 32 (64x32), then the centre 32x32 of it
    expected = np.asarray(Image.fromarray(wide).resize((64, 32), Image.BILINEAR))[:, 16:48]
    np.testing.assert_array_equal(
        data.images[data.files.index(str(folder / "bag" / "wide.png"))][..., 0], expected)


@pytest.mark.parametrize("make, message", [
    (lambda root: root, "does not exist"),
    (lambda root: (root.parent.mkdir(exist_ok=True), root.write_text("x"), root)[-1],
     "is not a folder"),
    (lambda root: (root.mkdir(parents=True), root)[-1], "holds no class folders"),
    (lambda root: ((root / "only").mkdir(parents=True), root)[-1],
     "holds only the class folder 'only'; a classifier needs two classes or more"),
])
def test_a_folder_that_is_not_a_data_set_is_named(tmp_path, make, message):
    root = make(tmp_path / "x" / "data")
    with pytest.raises(ValueError, match=message):
        load_image_folder(str(root), 28)


def test_a_class_without_images_and_a_symlink_loop_are_named(folder):
    (folder / "empty").mkdir()
    (folder / "empty" / "readme.md").write_text("no images")
    with pytest.raises(ValueError, match=f"the class folder {folder / 'empty'} holds no PNG"):
        load_image_folder(str(folder), 28)
    os.remove(folder / "empty" / "readme.md")
    os.rmdir(folder / "empty")
    os.symlink(folder / "loop", folder / "loop")  # a link to itself: not a class
    os.symlink(folder / "bag" / "loop.png", folder / "bag" / "loop.png")  # nor an image
    with pytest.raises(ValueError, match=f"{folder / 'bag' / 'loop.png'}: cannot read: Too "
                                         f"many levels of symbolic links"):
        load_image_folder(str(folder), 28)
    data = load_image_folder(str(folder), 28, skip_bad_images=True)
    assert str(folder / "loop") in data.ignored and len(data.skipped) == 1


def test_a_corrupt_image_stops_the_read_unless_bad_images_are_skipped(folder):
    whole = (folder / "bag" / "1.png").read_bytes()
    (folder / "bag" / "1.png").write_bytes(whole[:len(whole) // 2])
    (folder / "t-shirt" / "été 2.jpg").write_bytes(b"\xff\xd8\xff" + bytes(10))
    with pytest.raises(ValueError, match=r"1.png: the image is truncated or corrupt .* \(and 1 "
                                         r"more\)\. Fix or remove it, or skip such files"):
        load_image_folder(str(folder), 28)
    data = load_image_folder(str(folder), 28, skip_bad_images=True)
    assert [os.path.basename(f) for f, _ in data.skipped] == ["1.png", "été 2.jpg"]
    assert len(data.images) == 12 - 1 and str(folder / "bag" / "1.png") not in data.files
    assert data.labels.tolist() == [0] * 4 + [1] * 3 + [2] * 4


def test_bad_arguments_are_named(folder):
    with pytest.raises(ValueError, match="channels must be 1 .* got 2"):
        load_image_folder(str(folder), 28, channels=2)
    with pytest.raises(ValueError, match="size must be a positive integer, got 0"):
        load_image_folder(str(folder), 0)


def test_a_colour_folder_gives_normalised_batches(folder):
    from resnet_gluon.data import BatchIter

    tint = np.asarray(Image.open(folder / "bag" / "0.png"))
    Image.fromarray(np.stack([tint, tint // 2, tint // 4], axis=2)).save(folder / "bag" / "c.png")
    data = load_image_folder(str(folder), 32)
    mean, std = data.channel_stats()
    assert len(mean) == 3 and mean[0] > mean[1] > mean[2]  # the tinted bag is in them
    batches = BatchIter(data.images, data.labels, 8, shuffle=True, augment=True,
                        normalize=(mean, std))
    X, y = next(batches.batches(0))
    assert X.shape == (8, 3, 32, 32) and len(batches) == 2
    whole = np.concatenate([X.asnumpy() for X, _ in BatchIter(
        data.images, data.labels, 13, normalize=(mean, std)).batches(0)])
    np.testing.assert_allclose(whole.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(whole.std(axis=(0, 2, 3)), 1, atol=1e-4)


def _copy_class(source, target):
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.suffix == ".png":
            (target / path.name).write_bytes(path.read_bytes())


def test_a_class_name_is_one_name_in_nfc_and_decomposed(folder, tmp_path):
    # macOS writes "café" decomposed (NFD), Linux as typed (NFC): one class on either side.
    import unicodedata

    from resnet_gluon.sources import open_source

    root = tmp_path / "pair"
    for split, form in (("train", "NFC"), ("test", "NFD")):
        _copy_class(folder / "bag", root / split / unicodedata.normalize(form, "café"))
        _copy_class(folder / "t-shirt", root / split / "cafe")
    source = open_source(str(root))
    assert source.classes == ["cafe", "café"] and source.ref.test == str(root / "test")
    assert all(unicodedata.is_normalized("NFC", name) for name in source.classes)
    files, labels, classes, _ = list_image_folder(str(root / "test"))
    assert classes == source.classes and labels == [0] * 4 + [1] * 4


def test_a_flat_folder_with_a_class_called_train_is_flat(folder, tmp_path):
    # bus/car/train: train/ holds images, not class folders, so this is not the book's layout
    from resnet_gluon.folders import folder_layout

    root = tmp_path / "vehicles"
    for name, source in (("bus", "bag"), ("car", "t-shirt"), ("train", "ankle boot")):
        _copy_class(folder / source, root / name)
    assert folder_layout(str(root)) == (str(root), None)
    assert list_image_folder(str(root))[2] == ["bus", "car", "train"]


def test_names_with_control_characters_stay_on_one_line():
    from resnet_gluon.evaluate import EvalResult, format_report
    from resnet_gluon.predict import Prediction

    line = str(Prediction("photos/a\nb.png", [("dog\ncat", 0.75), ("bird\x1b[2J", 0.25)]))
    assert line == "photos/a\\nb.png: dog\\ncat 0.750, bird\\x1b[2J 0.250"
    report = format_report(EvalResult(0.5, [1.0, 0.0], np.array([[1, 0], [1, 0]])),
                           ["dog\ncat", "bird"])
    assert "dog\\ncat" in report and len(report.splitlines()) == 7  # 2 + 2 rows, 3 heads


def test_the_report_of_a_thousand_classes_names_the_most_confused_pairs():
    from resnet_gluon.evaluate import EvalResult, format_report, report_dict

    rng = np.random.default_rng(0)
    confusion = np.diag(rng.integers(5, 10, 1000))
    confusion[3, 7], confusion[10, 2], confusion[999, 0] = 9, 4, 6
    result = EvalResult(0.9, (np.diag(confusion) / confusion.sum(1)).tolist(), confusion)
    names = [f"n{i:04d}" for i in range(1000)]
    report = format_report(result, names)
    assert len(report) < 40_000, len(report)  # the matrix alone was 8 MB
    tail = report.split("the 3 most confused pairs of the 1,000 classes")[1].splitlines()
    assert tail[1:] == ["  n0003 -> n0007: 9", "  n0999 -> n0000: 6", "  n0010 -> n0002: 4"]
    whole = report_dict(result, names)
    assert whole["classes"][3]["predicted"][7] == 9 and len(whole["classes"]) == 1000


def test_a_strip_in_a_folder_is_skipped_by_name_not_a_memory_error(folder):
    # 19 KB of PNG, 1 x 20,000,000 pixels: its shorter side scaled to 28 made the other
    # 560 million pixels long.  Refused from its header; --skip-bad-images skips it.
    Image.new("L", (20_000_000, 1), 7).save(folder / "bag" / "strip.png")
    with pytest.raises(ValueError, match=r"strip.png: the image is 20000000x1 pixels, one side "
                                         r"more than 100 times the other"):
        load_image_folder(str(folder), 28)
    data = load_image_folder(str(folder), 28, skip_bad_images=True)
    assert [os.path.basename(path) for path, _ in data.skipped] == ["strip.png"]
    assert data.images.shape == (12, 28, 28)


def test_images_a_run_skipped_are_skipped_again_where_its_data_is_read(folder, tmp_path):
    # a run trained with --skip-bad-images: evaluate, INT8 and export read its folder again
    from resnet_gluon.inputs import InputSpec
    from resnet_gluon.model import ResNetSpec
    from resnet_gluon.sources import open_for_model
    from resnet_gluon.trained import ModelInfo

    (folder / "bag" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    info = ModelInfo(ResNetSpec(num_classes=3, in_channels=1), InputSpec("crop", 28, 1, [0.5],
                                                                         [0.25]), CLASSES)
    with pytest.raises(ValueError, match="9.png: the image is truncated or corrupt.*skip such "
                                         "files with --skip-bad-images"):
        open_for_model(info, data=str(folder)).calibration_images(info, 4)
    source = open_for_model(info, data=str(folder), skip_bad_images=True)
    assert source.calibration_images(info, 12).shape == (12, 1, 28, 28)


def test_a_fifo_among_the_images_is_marked_unreadable_not_waited_on(folder):
    from resnet_gluon.folders import file_marks

    os.mkfifo(folder / "bag" / "pipe.png")
    marks = file_marks(str(folder))
    assert marks["bag/pipe.png"].startswith("unreadable: ") and "not a regular file" in marks[
        "bag/pipe.png"]
    assert marks["bag/0.png"].split(":")[0] == str(os.path.getsize(folder / "bag" / "0.png"))
