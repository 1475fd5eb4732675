"""One data seam and one record of the input: open_source chooses the kind of data once, fit
records what it trained on, and every reader of the run gets it back."""
import json
import os

import numpy as np
import pytest
from mxnet import nd
from PIL import Image

import resnet_gluon
from common import write_class_folders
from resnet_gluon.config import TrainConfig
from resnet_gluon.data import CLASS_NAMES, BatchIter, find_fashion_mnist, stratified_sample
from resnet_gluon.folders import load_image_folder
from resnet_gluon.inputs import DataRef, InputSpec
from resnet_gluon.model import ResNetSpec
from resnet_gluon.recordio import pack
from resnet_gluon.run import RunDirTaken, RunRecord, write_config
from resnet_gluon.sources import (FashionMNIST, ImageFolder, RecordFile, open_for_model,
                                  open_source)
from resnet_gluon.train import fit
from resnet_gluon.trained import ModelInfo, load_model

LABELS = (1, 5, 7, 9)
CLASSES = sorted(CLASS_NAMES[i] for i in LABELS)  # ankle boot, sandal, sneaker, trouser
#: One step of 32 images at Fashion-MNIST's own size.
TINY = TrainConfig(epochs=1, resize=28, batch_size=32)


def _write(root, images, labels, per_class, start=0):
    write_class_folders(root, images, labels, LABELS, per_class, start)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, test_images):
    """photos/train (8 real Fashion-MNIST images a class) and photos/test (4 others)."""
    images, labels = test_images
    root = tmp_path_factory.mktemp("sources") / "photos"
    _write(root / "train", images, labels, 8)
    _write(root / "test", images, labels, 4, start=8)
    return root


def test_open_source_tells_each_kind_of_data_and_knows_its_classes(photos, tmp_path):
    source = open_source()
    assert isinstance(source, FashionMNIST) and source.classes == list(CLASS_NAMES)
    assert (source.kind, source.channels, source.ref) == ("fashion-mnist", 1, DataRef())
    idx = open_source(find_fashion_mnist())  # a directory of the IDX files
    assert isinstance(idx, FashionMNIST) and idx.ref.data == find_fashion_mnist()
    folder = open_source(str(photos))
    assert isinstance(folder, ImageFolder) and folder.classes == CLASSES
    assert (folder.kind, folder.channels) == ("crop", 1)
    assert folder.ref == DataRef(str(photos), str(photos / "test"))  # the test folder found
    for split in ("train", "test"):
        pack(str(photos / split), str(tmp_path / split))
    rec = open_source(str(tmp_path / "train.rec"), test=str(tmp_path / "test.rec"))
    assert isinstance(rec, RecordFile) and rec.classes == CLASSES and rec.channels == 1
    with pytest.raises(ValueError, match="are for your own images: give --data PATH too"):
        open_source(None, channels=3)
    with pytest.raises(ValueError, match="holds no class folders"):
        open_source(str(tmp_path / "train.json").replace("train.json", ""))


def test_a_source_builds_the_net_and_the_batches_of_one_recipe(photos):
    source = open_source(str(photos))
    config = source.configure(TINY)  # the data decides the classes and channels
    assert config.model == ResNetSpec(num_classes=4, in_channels=1)
    net = source.build_net(TINY)
    net.initialize()
    assert net(nd.zeros((2, 1, 28, 28))).shape == (2, 4)
    made = source.training(TINY)
    train = load_image_folder(str(photos / "train"), 28)
    mean, std = train.channel_stats()
    assert made.inputs == InputSpec("crop", 28, 1, mean, std)
    assert made.splits.train.num_examples == 32 and made.splits.test.num_examples == 16
    assert made.splits.val is None and made.notes[0].startswith("decoded 32 images of 4")
    X, y = next(iter(made.splits.test))  # normalised by the record's statistics
    np.testing.assert_allclose(X.asnumpy(), made.inputs.prepare(
        load_image_folder(str(photos / "test"), 28).images).asnumpy(), atol=1e-6)


def test_fit_on_a_source_records_what_every_reader_of_the_run_needs(photos, tmp_path):
    source = open_source(str(photos))
    run = tmp_path / "run"
    fit(source.build_net(TINY), source, TINY, run_dir=str(run), progress=False,
        log=lambda line: None)  # fit(net, source, config): the config in third place
    saved = json.loads((run / "config.json").read_text())
    assert (saved["classes"], saved["data"], saved["test_data"]) == (
        CLASSES, str(photos), str(photos / "test"))
    assert (saved["preprocess"], saved["resize"], saved["in_channels"]) == ("crop", 28, 1)
    net, info = load_model(str(run / "model.params"))
    assert info.inputs == source.training(TINY).inputs and info.classes == CLASSES
    reopened = open_for_model(info, str(run / "model.params"))
    assert reopened.ref == source.ref
    data = reopened.eval_batches(info, 64)
    assert data.what == f"images of {photos / 'test'}" and data.batches.num_examples == 16
    # a second fit into the run stops at once, in one line (also as a notebook shows it)
    with pytest.raises(RunDirTaken, match="already holds a run") as caught:
        fit(source.build_net(TINY), source, TINY, run_dir=str(run), progress=False)
    assert len(caught.value._render_traceback_()) == 1
    # the images change under the run: resume refuses, and config.json keeps its record
    inverted = tmp_path / "inverted"
    for path in (photos / "train").glob("*/*.png"):
        target = inverted / "train" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - np.asarray(Image.open(path))).save(target)
    os.symlink(photos / "test", inverted / "test")
    before = (run / "config.json").read_bytes()
    with pytest.raises(ValueError, match=r"changed since it trained on them \(train: 32 edited "
                                         r"\(first ankle boot/0.png\)\)"):
        fit(source.build_net(TINY), open_source(str(inverted)), TINY, run_dir=str(run),
            resume=True, progress=False, log=lambda line: None)
    assert (run / "config.json").read_bytes() == before


def test_fit_refuses_what_the_run_could_not_describe(photos):
    images, labels = load_image_folder(str(photos / "train"), 28).images, np.arange(32) % 4
    net = ResNetSpec(num_classes=4).build()
    cases = [(BatchIter(images, labels, 32, normalize=([0.3], [0.3])), "batches are normalised"),
             (BatchIter(images, labels, 32, resize=32), "32x32, not config.resize 28")]
    for batches, message in cases:
        with pytest.raises(ValueError, match=message):
            fit(net, batches, None, TINY, progress=False)
    with pytest.raises(ValueError, match="the net has 10 outputs but the data 4 classes"):
        fit(ResNetSpec().build(), open_source(str(photos)), TINY, progress=False)
    with pytest.raises(TypeError, match="makes the test and validation batches"):
        fit(net, open_source(str(photos)), [], TINY, progress=False)


def _run_of(tmp_path, data: DataRef, val_split=0):
    """A run directory's record, written as fit writes it (its weights a stand-in)."""
    run = tmp_path / "run"
    config = TrainConfig(resize=28, val_split=val_split, model=ResNetSpec(num_classes=4))
    write_config(str(run), RunRecord(config, InputSpec("crop", 28, 1, [0.3], [0.3]),
                                     tuple(CLASSES), data))
    (run / "model.params").write_bytes(b"")
    return str(run / "model.params"), ModelInfo.read(str(run / "config.json"))


def test_a_trained_nets_data_is_opened_again_or_named_when_it_cannot_be(photos, tmp_path):
    params, info = _run_of(tmp_path, DataRef(str(photos / "train")), val_split=8)
    with pytest.raises(ValueError, match="which has no test images; evaluate the images it "
                                         "held out with --val-split 8 --seed 0, or give"):
        open_for_model(info, params)
    assert open_for_model(info, params, val_split=8).ref.data == str(photos / "train")
    assert open_for_model(info, params, test=False).ref.data == str(photos / "train")
    with pytest.raises(ValueError, match="the run .* held out 8 training images with seed 0"):
        open_for_model(info, params, val_split=8, seed=1)
    with pytest.raises(ValueError, match="this net was trained on Fashion-MNIST"):
        open_for_model(ModelInfo(), None, str(photos))
    with pytest.raises(ValueError, match="trained on your own images; give --data PATH"):
        open_for_model(info, params, find_fashion_mnist())
    with pytest.raises(ValueError, match="no run config.json names them"):
        open_for_model(info, None)
    moved = tmp_path / "moved"
    params, info = _run_of(moved, DataRef(str(moved / "gone"), str(photos / "test")))
    with pytest.raises(ValueError, match="gone, the data the run recorded, is not there"):
        open_for_model(info, params)


def test_the_input_record_round_trips_and_refuses_what_no_net_takes():
    spec = InputSpec("crop", 32, 3, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict() == {"preprocess": "crop", "resize": 32, "in_channels": 3,
                              "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}
    assert InputSpec.from_dict({}) == InputSpec("fashion-mnist", 96, 1)  # files before it
    for kwargs, message in [(dict(kind="resize"), "kind must be one of"),
                            (dict(resize=4), "resize must be an integer from 8 to 512"),
                            (dict(channels=2), "1 \\(gray\\) or 3 \\(colour\\)"),
                            (dict(mean=(0.5,)), "mean and std must both be given")]:
        with pytest.raises(ValueError, match=message):
            InputSpec(**kwargs)
    with pytest.raises(ValueError, match="takes 3 input channels but its input record says 1"):
        ModelInfo(ResNetSpec(in_channels=3), InputSpec())


def test_a_script_reaches_the_training_side_from_the_package():
    from resnet_gluon import sources, train, trained

    assert resnet_gluon.fit is train.fit and resnet_gluon.open_source is sources.open_source
    assert resnet_gluon.trained is trained and "open_source" in resnet_gluon.__all__
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        resnet_gluon.nothing


def test_limits_on_a_folder_take_a_seeded_sample_of_every_class(photos):
    # An image folder lists its files class by class: the first 20 would be 8, 8 and 4 of
    # three classes, and the first 8 test images two classes only.
    source = open_source(str(photos))
    made = source.training(TrainConfig(epochs=1, resize=28, batch_size=4, limit_train=20,
                                       limit_test=8))
    train_labels = np.concatenate([y.asnumpy() for _, y in made.splits.train.batches(0)])
    test_labels = np.concatenate([y.asnumpy() for _, y in made.splits.test])
    assert np.bincount(train_labels.astype(int)).tolist() == [5, 5, 5, 5]
    assert np.bincount(test_labels.astype(int)).tolist() == [2, 2, 2, 2]
    assert ("--limit-train 20: 20 images, a seeded sample stratified by class (ankle boot 5, "
            "sandal 5, sneaker 5, trouser 5)") in made.notes
    assert any(n.startswith("--limit-test 8: 8 images, a seeded sample") for n in made.notes)
    # evaluate's --limit-test: the same kind of sample, and it says so
    info = ModelInfo(source.spec(), made.inputs, CLASSES)
    data = source.eval_batches(info, batch_size=8, limit=6)
    labels = np.concatenate([y.asnumpy() for _, y in data.batches]).astype(int)
    assert sorted(np.bincount(labels, minlength=4).tolist()) == [1, 1, 2, 2]
    assert data.what.endswith("(a sample stratified by class, seed 0, of 6)")


def test_a_stratified_sample_keeps_each_classs_share_and_its_seed():
    labels = np.repeat([0, 1, 2], [60, 30, 10])
    pick = stratified_sample(labels, 10, seed=3)
    assert np.bincount(labels[pick]).tolist() == [6, 3, 1] and np.all(np.diff(pick) > 0)
    assert np.array_equal(pick, stratified_sample(labels, 10, seed=3))
    assert not np.array_equal(pick, stratified_sample(labels, 10, seed=4))
    assert np.bincount(labels[stratified_sample(labels, 3)]).tolist() == [1, 1, 1]
    assert np.bincount(labels[stratified_sample(labels, 2)], minlength=3).tolist() == [1, 1, 0]
    assert len(stratified_sample(labels, 1000)) == 100
    few = np.repeat([0, 1, 2], [80, 10, 10])  # shares 2.4, 0.3, 0.3: still one of each
    assert np.bincount(few[stratified_sample(few, 3)]).tolist() == [1, 1, 1]


def test_a_run_knows_its_images_and_refuses_them_changed(photos, tmp_path):
    # Resume, and evaluating the images a run held out, need the run's images as they were:
    # an image added, removed or edited is named, and nothing of the run is rewritten.
    import shutil

    root = tmp_path / "photos"
    shutil.copytree(photos, root)
    run = tmp_path / "run"
    config = TrainConfig(epochs=1, resize=28, batch_size=8, val_split=8)
    source = open_source(str(root))
    fit(source.build_net(config), source, config, run_dir=str(run), progress=False,
        log=lambda line: None)
    kept = json.loads((run / "images.json").read_text())
    assert sorted(kept) == ["test", "train"] and len(kept["train"]) == 32
    assert kept["train"]["sandal/0.png"].split(":")[0] == str(
        os.path.getsize(root / "train" / "sandal" / "0.png"))
    net, info = load_model(str(run / "model.params"))
    assert open_for_model(info, str(run / "model.params"), val_split=8).classes == CLASSES
    shutil.copy(root / "train" / "sandal" / "0.png", root / "train" / "sandal" / "new.png")
    with pytest.raises(ValueError, match=r"--val-split 8: the training images changed since "
                                         r"the run held 8 of them out \(train: 1 added \(first "
                                         r"sandal/new.png\)\)"):
        open_for_model(info, str(run / "model.params"), val_split=8)
    before = [(run / name).read_bytes() for name in ("config.json", "images.json")]
    (root / "train" / "sandal" / "new.png").unlink()
    image = root / "train" / "trouser" / "3.png"
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)  # inverted in place
    (root / "train" / "ankle boot" / "1.png").unlink()
    with pytest.raises(ValueError, match=r"\(train: 1 removed \(first ankle boot/1.png\), 1 "
                                         r"edited \(first trouser/3.png\)\)"):
        fit(source.build_net(config), open_source(str(root)), config, run_dir=str(run),
            resume=True, progress=False, log=lambda line: None)
    assert [(run / name).read_bytes() for name in ("config.json", "images.json")] == before
