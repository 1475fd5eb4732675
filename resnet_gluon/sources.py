"""One seam for every data source a user names: Fashion-MNIST, an image folder, a ``.rec``.

:func:`open_source` is the only place the package chooses between them (GluonCV's one
``if opt.use_rec`` switch).  What it returns knows its classes and channels, and makes
everything a run or a trained net needs of the data from a recipe or a net's info:

- :meth:`Source.training`: training, test and validation batches, and the input record
  (:class:`~resnet_gluon.inputs.InputSpec`) they were made with, for ``fit``;
- :meth:`Source.eval_batches`: batches for a trained net, prepared as its run's were;
- :meth:`Source.calibration_images`: training images for INT8 calibration;
- :meth:`Source.first_images`: the first test images, for the ONNX check.

A script opens the data once and hands the source to ``fit``; ``fit`` writes the input
record, the classes and the :class:`~resnet_gluon.inputs.DataRef` into the run's
``config.json``, and :func:`open_for_model` opens the same data again for a trained net::

    source = open_source("photos")               # photos/train + photos/test
    config = recipe("fast", epochs=3, resize=32)
    net = source.build_net(config)               # the folder's classes and channels
    fit(net, source, config, run_dir="runs/photos")

:mod:`resnet_gluon.data`, :mod:`resnet_gluon.folders` and :mod:`resnet_gluon.recordio`
stay formats: IDX files and batches, decoding a folder, packing and streaming RecordIO.
"""
import dataclasses
import os
from typing import Iterable, List, NamedTuple, Optional, Tuple

import numpy as np
from mxnet import gluon, nd

from .config import TrainConfig
from .data import (CLASS_NAMES, BatchIter, Splits, find_fashion_mnist, holds_fashion_mnist,
                   hold_out, load_fashion_mnist, load_splits, split_validation,
                   stratified_sample)
from .folders import (HELD_OUT, FolderData, check_same_classes, file_marks, folder_layout,
                      image_modes, list_image_folder, load_image_folder)
from .inputs import DataRef, Fingerprint, InputSpec
from .model import ResNetSpec
from .recordio import RecordBatches, pack_labels, read_pack_info, read_records
from .run import find_run_config, read_images, read_json
from .trained import ModelInfo

__all__ = ["Source", "FashionMNIST", "ImageFolder", "RecordFile", "TrainingData",
           "EvalData", "open_source", "open_for_model"]


class TrainingData(NamedTuple):
    """A run's batches, the input record they were made with, and lines for its log."""

    splits: Splits
    inputs: InputSpec
    notes: List[str]


class EvalData(NamedTuple):
    """Batches to evaluate a trained net on, and what they are in words ("images of X")."""

    batches: Iterable
    what: str


class Source:
    """Data a user named, opened (see the module's docstring); made by :func:`open_source`.

    Attributes
    ----------
    kind : {'fashion-mnist', 'crop'}
        How its images become a net's input (:class:`~resnet_gluon.inputs.InputSpec`).
    ref : DataRef
        What names it, as a run's config.json records it.
    classes : list of str
    """

    kind = "crop"

    def __init__(self, ref: DataRef, classes: List[str]):
        self.ref, self.classes = ref, list(classes)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.ref.data!r}, {len(self.classes)} classes, "
                f"{self.channels} channel{'s' if self.channels > 1 else ''})")

    @property
    def channels(self) -> int:
        """1 (gray) or 3 (colour)."""
        raise NotImplementedError

    @property
    def has_test(self) -> bool:
        """Whether the data holds test images apart from its training images."""
        return self.ref.test is not None

    # ---- the net and the recipe the data decides part of

    def spec(self, model: Optional[ResNetSpec] = None) -> ResNetSpec:
        """``model`` (default ResNet-18) with this data's class count and channels."""
        return dataclasses.replace(model or ResNetSpec(), num_classes=len(self.classes),
                                   in_channels=self.channels)

    def configure(self, config: Optional[TrainConfig] = None) -> TrainConfig:
        """``config`` (default the book's) with this data's class count and channels."""
        config = config or TrainConfig()
        return dataclasses.replace(config, model=self.spec(config.model))

    def build_net(self, config: Optional[TrainConfig] = None) -> gluon.HybridBlock:
        """The net of ``config``'s architecture for this data (its classes and channels)."""
        return self.configure(config).model.build()

    # ---- what a run and a trained net read

    def training(self, config: TrainConfig, num_parts: int = 1, part_index: int = 0
                 ) -> TrainingData:
        """Training, test and validation batches of ``config``'s recipe (size, batch size
        over ``num_parts`` workers, augmentation, seed, limits, validation split)."""
        raise NotImplementedError

    def eval_batches(self, info: ModelInfo, batch_size: int = 256, val_split: int = 0,
                     seed: int = 0, limit: Optional[int] = None) -> EvalData:
        """The test images (with ``val_split``: the ``val_split`` training images a run with
        ``seed`` held out), prepared as the net of ``info`` takes them."""
        raise NotImplementedError

    def calibration_images(self, info: ModelInfo, num: int = 512, seed: int = 0) -> nd.NDArray:
        """``num`` training images, a seeded choice, as the net's input (INT8 calibration)."""
        raise NotImplementedError

    def first_images(self, info: ModelInfo, num: int) -> Tuple[nd.NDArray, str]:
        """The first ``num`` test images as one NDArray of the net's input, and what they
        are in words."""
        data = self.eval_batches(info, min(num, 256))
        X = []
        for batch, _ in data.batches:
            X.append(batch.asnumpy())
            if sum(len(x) for x in X) >= num:
                break
        return nd.array(np.concatenate(X)[:num]), f"test {data.what}"

    def fingerprint(self) -> Fingerprint:
        """Which images exactly (see :class:`~resnet_gluon.inputs.Fingerprint`)."""
        return Fingerprint()

    def check_fits(self, info: ModelInfo) -> None:
        """Refuse a net this data cannot be read for: another kind of input or other classes
        (every label would name another class)."""
        if info.preprocess != self.kind:
            if self.kind == "crop":
                raise ValueError(f"--data {self.ref.data}: this net was trained on "
                                 f"Fashion-MNIST (its images are found by --data-dir); drop "
                                 f"--data.")
            raise ValueError("this net was trained on your own images; give --data PATH (an "
                             "image folder or .rec of its classes).")
        if self.classes != list(info.classes):
            raise ValueError(f"the classes of {self.ref.data or 'Fashion-MNIST'} "
                             f"({len(self.classes)}: "
                             f"{self.classes[:4]}...) are not the net's ({len(info.classes)}: "
                             f"{list(info.classes)[:4]}...); give the data the net was "
                             f"trained on.")


# --------------------------------------------------------------------------- Fashion-MNIST

class FashionMNIST(Source):
    """The real Fashion-MNIST (:mod:`resnet_gluon.data`): ``root`` or where it is found."""

    kind = "fashion-mnist"

    def __init__(self, root: Optional[str] = None):
        super().__init__(DataRef(root), list(CLASS_NAMES))

    @property
    def channels(self) -> int:
        return 1

    @property
    def has_test(self) -> bool:
        return True

    def training(self, config: TrainConfig, num_parts: int = 1, part_index: int = 0
                 ) -> TrainingData:
        splits = load_splits(config.batch_size // num_parts, config.resize, self.ref.data,
                             config.limit_train, config.limit_test, config.augment,
                             config.seed, num_parts, part_index, config.random_erasing,
                             config.val_split)
        return TrainingData(splits, InputSpec("fashion-mnist", config.resize, 1), [])

    def eval_batches(self, info: ModelInfo, batch_size: int = 256, val_split: int = 0,
                     seed: int = 0, limit: Optional[int] = None) -> EvalData:
        self.check_fits(info)
        if val_split:
            *_, images, labels = split_validation(*load_fashion_mnist("train", self.ref.data),
                                                  val_split, seed)
            what = f"validation images held out with seed {seed}"
        else:
            images, labels = load_fashion_mnist("test", self.ref.data)
            what = "images"
        batches = BatchIter(images[:limit], labels[:limit], batch_size, resize=info.resize)
        return EvalData(batches, what)

    def calibration_images(self, info: ModelInfo, num: int = 512, seed: int = 0) -> nd.NDArray:
        self.check_fits(info)
        images, _ = load_fashion_mnist("train", self.ref.data)
        return info.prepare(_pick(images, num, seed, "the Fashion-MNIST training set"))

    def first_images(self, info: ModelInfo, num: int) -> Tuple[nd.NDArray, str]:
        self.check_fits(info)
        images, _ = load_fashion_mnist("test", self.ref.data)
        return info.prepare(images[:num]), "Fashion-MNIST test images"


def _pick(images: np.ndarray, num: int, seed: int, where: str) -> np.ndarray:
    """``num`` of ``images``, a seeded choice kept in their order."""
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"num must be a positive number of images, got {num!r}.")
    if num > len(images):  # else "calibrated on N images" would claim more than were used
        raise ValueError(f"num (--calib-images) must be at most the {len(images):,} training "
                         f"images, got {num:,} ({where}); 512 is plenty for min/max "
                         f"calibration.")
    return images[np.sort(np.random.default_rng(seed).choice(len(images), num, replace=False))]


# --------------------------------------------------------------------------- an image folder

class ImageFolder(Source):
    """An image folder (:mod:`resnet_gluon.folders`), decoded into memory at the run's size:
    ``ROOT/CLASS/IMAGE``, or the book's ``train/`` with ``test/`` or ``valid/``."""

    def __init__(self, root: str, test: Optional[str] = None, channels: Optional[int] = None,
                 skip_bad_images: bool = False):
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 (gray), 3 (colour) or None (what the images "
                             f"are), got {channels!r}.")
        self.train_root, found = folder_layout(root)
        self.test_root = test or found
        self._files, _, classes, _ = list_image_folder(self.train_root)
        # The test folder recorded as found: a later command reads the same one.
        super().__init__(DataRef(root, self.test_root, channels, skip_bad_images), classes)
        self._channels = channels

    @property
    def channels(self) -> int:
        """As asked, else 3 if any training image is colour (read from the files' headers)."""
        if self._channels is None:
            modes = image_modes(self._files)
            self._channels = 3 if any(m == "colour" for m in modes) else 1
        return self._channels

    def fingerprint(self) -> Fingerprint:
        """Each image's path and the size and hash of its bytes, training and test folder."""
        roots = (("train", self.train_root), ("test", self.test_root))
        return Fingerprint({part: file_marks(root) for part, root in roots if root})

    def _decode(self, root: str, size: int, channels: int) -> FolderData:
        return load_image_folder(root, size, channels, self.ref.skip_bad_images)

    def training(self, config: TrainConfig, num_parts: int = 1, part_index: int = 0
                 ) -> TrainingData:
        if self.test_root is None and not config.val_split:
            raise ValueError(f"{self.ref.data} has no test folder ({' or '.join(HELD_OUT)} "
                             f"beside train/), so the run would measure nothing; hold training "
                             f"images out with --val-split N (a tenth of them is usual), or add "
                             f"{self.ref.data}/train and {self.ref.data}/test.")
        size, batch_size = config.resize, config.batch_size // num_parts
        train = self._decode(self.train_root, size, self.channels)
        notes = _read_notes(train, self.train_root, size)
        train_x, train_y, val_x, val_y = hold_out(train.images, train.labels, config.val_split,
                                                  config.seed, config.limit_train, batch_size,
                                                  sample=True)
        notes += _sample_notes("--limit-train", config.limit_train, train_y, train.classes)
        stats = FolderData(train_x, train_y, train.classes, []).channel_stats()
        batches = dict(batch_size=batch_size, normalize=stats)
        test = None
        if self.test_root is not None:
            held = self._decode(self.test_root, size, self.channels)
            check_same_classes(train.classes, held.classes, self.train_root, self.test_root)
            notes += _read_notes(held, self.test_root, size)
            keep = stratified_sample(held.labels, config.limit_test, config.seed)
            notes += _sample_notes("--limit-test", config.limit_test, held.labels[keep],
                                   held.classes)
            test = BatchIter(held.images[keep], held.labels[keep], **batches)
        splits = Splits(
            BatchIter(train_x, train_y, shuffle=True, augment=config.augment, seed=config.seed,
                      num_parts=num_parts, part_index=part_index, erase=config.random_erasing,
                      **batches),
            test, BatchIter(val_x, val_y, **batches) if config.val_split else None)
        return TrainingData(splits, InputSpec("crop", size, self.channels, *stats), notes)

    def eval_batches(self, info: ModelInfo, batch_size: int = 256, val_split: int = 0,
                     seed: int = 0, limit: Optional[int] = None) -> EvalData:
        self.check_fits(info)
        root = self.train_root if val_split or self.test_root is None else self.test_root
        data = self._decode(root, info.resize, info.model.in_channels)
        check_same_classes(self.classes, data.classes, self.train_root, root)
        images, labels = data.images, data.labels
        what = f"images of {root}"
        if val_split:
            *_, images, labels = split_validation(images, labels, val_split, seed)
            what = f"validation images held out with seed {seed} of {root}"
        if limit is not None and limit < len(labels):
            keep = stratified_sample(labels, limit, seed)
            images, labels = images[keep], labels[keep]
            what += f" (a sample stratified by class, seed {seed}, of {len(keep):,})"
        return EvalData(BatchIter(images, labels, batch_size, normalize=info.normalize), what)

    def calibration_images(self, info: ModelInfo, num: int = 512, seed: int = 0) -> nd.NDArray:
        self.check_fits(info)
        data = self._decode(self.train_root, info.resize, info.model.in_channels)
        return info.prepare(_pick(data.images, num, seed, self.train_root))


def _sample_notes(option: str, limit: Optional[int], labels: np.ndarray, classes: List[str]
                  ) -> List[str]:
    """The log's line on what a limit took: a sample, and how many of each class."""
    if limit is None:
        return []
    counts = np.bincount(labels, minlength=len(classes))
    shown = ", ".join(f"{c} {n}" for c, n in zip(classes[:8], counts[:8]))
    return [f"{option} {limit}: {len(labels):,} images, a seeded sample stratified by class "
            f"({shown}{', ...' if len(classes) > 8 else ''})"]


def _read_notes(data: FolderData, root: str, size: int) -> List[str]:
    kind = "gray" if data.channels == 1 else "colour"
    notes = [f"decoded {len(data.images):,} images of {len(data.classes)} classes from "
             f"{root} in {data.seconds:.1f} s ({kind}, {size}x{size})"]
    if data.ignored:
        notes.append(f"skipped {len(data.ignored):,} files of {root} that are not PNG, JPEG "
                     f"or BMP images, first {data.ignored[0]}")
    notes += [f"skipped {path}: {why}" for path, why in data.skipped]
    return notes


# --------------------------------------------------------------------------- a .rec

class RecordFile(Source):
    """A ``.rec`` written by ``pack`` (:mod:`resnet_gluon.recordio`), streamed through
    MXNet's ``ImageRecordIter``; ``test`` the test ``.rec``.  Its images are stored at the
    pack's size, so that size is the run's input side (:meth:`configure`)."""

    def __init__(self, rec: str, test: Optional[str] = None, channels: Optional[int] = None):
        self.pack = read_pack_info(rec)
        self._test = None
        if channels is not None and channels != self.pack.channels:
            raise ValueError(f"--channels {channels}: {rec} was packed with "
                             f"{self.pack.channels}; the pack's statistics are for those. "
                             f"Leave --channels out.")
        if test is not None:
            held = self._test = read_pack_info(test)
            check_same_classes(list(self.pack.classes), list(held.classes), rec, test)
            if (held.size, held.channels) != (self.pack.size, self.pack.channels):
                raise ValueError(f"{test} holds {held}, {rec} {self.pack}; pack both at one "
                                 f"size (pack --resize).")
        super().__init__(DataRef(rec, test, channels), list(self.pack.classes))

    @property
    def channels(self) -> int:
        return self.pack.channels

    def fingerprint(self) -> Fingerprint:
        """Each pack's digest of its records (written by ``pack``)."""
        parts = {"train": (self.ref.data, self.pack), "test": (self.ref.test, self._test)}
        return Fingerprint({part: {os.path.basename(rec): info.digest}
                            for part, (rec, info) in parts.items() if rec})

    def configure(self, config: Optional[TrainConfig] = None) -> TrainConfig:
        """``config`` with this data's classes and channels, at the pack's size."""
        return dataclasses.replace(super().configure(config), resize=self.pack.size)

    def training(self, config: TrainConfig, num_parts: int = 1, part_index: int = 0
                 ) -> TrainingData:
        rec, test = self.ref.data, self.ref.test
        given = [name for name, value in (("val-split", config.val_split),
                                          ("random-erasing", config.random_erasing)) if value]
        if given:
            raise ValueError(f"--{given[0]} is for image folders; a .rec is streamed as "
                             f"packed. Pack the images to hold out as their own folder (pack "
                             f"DIR/test test) and pass --test-data test.rec.")
        if test is None:
            raise ValueError(f"a .rec has no test part: pack the test folder too and give it, "
                             f"e.g. --data {rec} --test-data test.rec.")
        inputs = InputSpec("crop", config.resize, self.channels, self.pack.mean,
                           self.pack.std)
        common = dict(batch_size=config.batch_size // num_parts, normalize=inputs.normalize)
        order = dict(shuffle=True, augment=config.augment, seed=config.seed,
                     num_parts=num_parts, part_index=part_index)
        notes = [] if config.limit_train else [
            f"streaming {self.pack} from {rec} through ImageRecordIter (the pack's size is the "
            f"run's); resume is not bit-identical from a .rec"]
        train, more = self._part(rec, config.limit_train, config.seed, "--limit-train", common,
                                 order)
        held, less = self._part(test, config.limit_test, config.seed, "--limit-test", common)
        return TrainingData(Splits(train, held), inputs, notes + more + less)

    def _part(self, rec: str, limit: Optional[int], seed: int, option: str, common: dict,
              order: Optional[dict] = None) -> Tuple[Iterable, List[str]]:
        """A ``.rec``'s batches: streamed whole, or a ``limit``'s stratified sample of its
        records, decoded into memory (batches as an image folder's)."""
        if limit is None:
            return RecordBatches(rec, resize=self.pack.size, channels=self.channels,
                                 **common, **(order or {})), []
        labels = pack_labels(rec)
        images, labels = read_records(rec, stratified_sample(labels, limit, seed))
        return BatchIter(images, labels, **common, **(order or {})), _sample_notes(
            option, limit, labels, self.classes)

    def _batches(self, rec: str, info: ModelInfo, batch_size: int) -> RecordBatches:
        self.check_fits(info)
        return RecordBatches(rec, batch_size, info.resize, info.model.in_channels,
                             info.normalize)

    def eval_batches(self, info: ModelInfo, batch_size: int = 256, val_split: int = 0,
                     seed: int = 0, limit: Optional[int] = None) -> EvalData:
        if val_split:
            raise ValueError("--val-split is for image folders; a .rec is read as packed.")
        rec = self.ref.test or self.ref.data
        if limit is None:
            return EvalData(self._batches(rec, info, batch_size), f"images of {rec}")
        self._batches(rec, info, batch_size)  # the checks: the net takes this pack
        batches, _ = self._part(rec, limit, seed, "--limit-test",
                                dict(batch_size=batch_size, normalize=info.normalize))
        return EvalData(batches, f"images of {rec} (a sample stratified by class, seed "
                                 f"{seed}, of {batches.num_examples:,})")

    def calibration_images(self, info: ModelInfo, num: int = 512, seed: int = 0) -> nd.NDArray:
        # The pack's order is already a seeded shuffle: its first images are a random choice.
        _pick(np.arange(self.pack.count), num, seed, self.ref.data)
        return next(iter(self._batches(self.ref.data, info, num)))[0]


# --------------------------------------------------------------------------- the switch

def open_source(data: Optional[str] = None, test: Optional[str] = None,
                channels: Optional[int] = None, skip_bad_images: bool = False) -> Source:
    """Open the data a user names: the one place the package chooses a kind of source.

    Parameters
    ----------
    data : str, optional
        None: Fashion-MNIST, where it is found (:func:`resnet_gluon.data.find_fashion_mnist`);
        a directory of its four IDX files; an image folder (``DIR/CLASS/IMAGE``, or the
        book's ``DIR/train`` with ``DIR/test`` or ``DIR/valid``); or a ``.rec`` written by
        ``pack``.
    test : str, optional
        The test folder or ``.rec`` (default: the folder layout's ``test/`` or ``valid/``;
        a ``.rec`` needs one to train).
    channels : {None, 1, 3}
        For image folders: 1 gray, 3 colour, None what the images are.
    skip_bad_images : bool, default False
        For image folders: skip unreadable images, naming each, instead of stopping.

    Raises
    ------
    ValueError
        The data is not one of these, or options are given that it does not take; the
        message says which and what to do.
    """
    if data is not None:
        data = os.path.abspath(os.path.expanduser(data))  # recorded whole: read from anywhere
    if test is not None:
        test = os.path.abspath(os.path.expanduser(test))
    if data is None or os.path.isdir(data) and holds_fashion_mnist(data):
        if test or channels or skip_bad_images:
            raise ValueError("--test-data, --channels and --skip-bad-images are for your own "
                             "images: give --data PATH too.")
        if data is not None:
            find_fashion_mnist(data)  # all four files, or say which are missing
        return FashionMNIST(data)
    if data.endswith(".rec"):
        if skip_bad_images:
            raise ValueError(f"--skip-bad-images is for image folders: {data} holds only "
                             f"images 'pack' checked whole.")
        return RecordFile(data, test, channels)
    return ImageFolder(data, test, channels, skip_bad_images)


def open_for_model(info: ModelInfo, params: Optional[str] = None, data: Optional[str] = None,
                   val_split: int = 0, seed: int = 0, test: bool = True,
                   skip_bad_images: bool = False) -> Source:
    """The data a trained net is evaluated, calibrated and checked on.

    ``data`` when given (an image folder's unreadable images skipped with
    ``skip_bad_images``); else the data its run recorded (the ``config.json`` beside
    ``params``, opened with the options it was trained with, ``--skip-bad-images`` too, or
    with ``skip_bad_images`` given);
    else, for a Fashion-MNIST net (the shipped weights, an export), Fashion-MNIST.  With
    ``val_split`` (evaluating held-out images) the run must have held out exactly those
    images, of training images that are still the ones it had (its fingerprint), or the
    figure would be of images it trained on.  ``test`` False: only its training images are
    read (INT8 calibration).

    Raises
    ------
    ValueError
        The net was trained on your own images and nothing says where they are (or they are
        gone), the data does not fit the net, or ``val_split`` is not the run's, or its
        training images changed since.
    """
    config = find_run_config(params) if params and os.path.isfile(params) else None
    saved = read_json(config) if config else {}
    if val_split:
        _check_held_out(params, config, saved, val_split, seed)
    if data is not None:
        source = open_source(data, skip_bad_images=skip_bad_images)
    elif info.preprocess == "fashion-mnist":
        source = open_source(DataRef.from_dict(saved).data,
                             skip_bad_images=skip_bad_images)  # refused: not a folder
    else:
        source = _recorded(saved, config, test and not val_split, skip_bad_images)
    source.check_fits(info)
    if val_split:  # the same seed holds out other images of another list of files
        kept = read_images(os.path.dirname(config))
        changed = kept.changes(source.fingerprint(), ("train",)) if kept.parts else []
        if changed:
            raise ValueError(f"--val-split {val_split}: the training images changed since the "
                             f"run held {val_split} of them out ({changed[0]}), so the same "
                             f"seed now holds out others, some of which it trained on. "
                             f"Restore the images, or evaluate on test images.")
    return source


def _recorded(saved: dict, config: Optional[str], test: bool, skip_bad_images: bool = False
              ) -> Source:
    """The own images a run's config.json names, opened again; refused when they are gone,
    or when they hold no test images and no held-out ones are asked for."""
    ref = DataRef.from_dict(saved)
    if ref.data is None:
        why = "its run names none" if config else "no run config.json names them"
        raise ValueError(f"this net was trained on your own images and {why}; give --data "
                         f"PATH (an image folder or .rec of its classes).")
    for named in (ref.data, ref.test):
        if named and not os.path.exists(named):
            raise ValueError(f"{named}, the data the run recorded, is not there any more; "
                             f"give --data PATH.")
    source = open_source(ref.data, ref.test, ref.channels,
                         ref.skip_bad_images or skip_bad_images)
    if test and not source.has_test:
        held = saved.get("val_split", 0)
        fix = (f"evaluate the images it held out with --val-split {held} --seed "
               f"{saved.get('seed', 0)}, or " if held else "")
        raise ValueError(f"the run trained on {ref.data}, which has no test images; {fix}give "
                         f"--data PATH (test images of its classes).")
    return source


def _check_held_out(params: Optional[str], config: Optional[str], saved: dict,
                    val_split: int, seed: int) -> None:
    """Refuse ``val_split``/``seed`` unless the weights' run held out those very images."""
    if params is None:
        raise ValueError("--val-split: the shipped weights were trained on all 60,000 training "
                         "images; none were held out, so no validation figure can be read "
                         "off them. Give --params of a run trained with --val-split.")
    if config is None:
        raise ValueError(f"--val-split: no config.json of a run beside {params} says "
                         f"which images it held out. Give --params RUN_DIR/model.params of a "
                         f"run trained with --val-split.")
    held, run_seed = saved.get("val_split", 0), saved.get("seed", 0)
    if (held, run_seed) != (val_split, seed):
        fix = (f"pass --val-split {held} --seed {run_seed}" if held else
               "it has no validation images: evaluate it on the test set")
        raise ValueError(f"--val-split {val_split} --seed {seed}: the run ({config}) held out "
                         f"{held} training images with seed {run_seed}, so these are not "
                         f"images it did not train on; {fix}.")
