"""Fashion-MNIST, the real files, offline first.

Where the files are looked for, in order:

1. the directory given (``root`` / ``--data-dir``);
2. ``$MXNET_HOME/datasets/fashion-mnist`` (``~/.mxnet/datasets/fashion-mnist``);
3. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

Only when none holds them is Gluon's downloader asked.  The IDX ``.gz``
files are read here, with their magic numbers, counts and shapes checked:
Gluon's own ``FashionMNIST`` rejects Debian's files (their ``.gz`` checksums
differ from its list) and would try to download.
"""
import gzip
import os
import struct
import zlib
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mxnet import nd

from ._checks import NONNEGATIVE_INT, POSITIVE_INT, PROBABILITY

__all__ = ["CLASS_NAMES", "FILES", "DEBIAN_DIR", "candidate_dirs", "find_fashion_mnist",
           "holds_fashion_mnist",
           "read_idx", "load_fashion_mnist", "resize_batch", "BatchIter",
           "normalizer", "split_validation", "stratified_sample", "hold_out", "Splits",
           "load_splits",
           "load_data_fashion_mnist"]

#: The ten classes, in label order (as ``d2lzh.get_fashion_mnist_labels``).
CLASS_NAMES: Tuple[str, ...] = ("t-shirt", "trouser", "pullover", "dress", "coat",
                                "sandal", "shirt", "sneaker", "bag", "ankle boot")

#: split -> (images file, labels file, number of examples).
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"

_HOW_TO_GET = (
    "Get the four IDX .gz files in one of these ways:\n"
    "  - Debian/Ubuntu: apt-get install dataset-fashion-mnist  (puts them in "
    f"{DEBIAN_DIR})\n"
    "  - download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
    "    t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from\n"
    "    the zalandoresearch/fashion-mnist repository into a directory and pass it as\n"
    "    root= / --data-dir\n"
    "  - with internet access, run once without files: Gluon's downloader fills "
    "$MXNET_HOME/datasets/fashion-mnist")


def _mxnet_home_dir() -> str:
    home = os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet"))
    return os.path.join(os.path.expanduser(home), "datasets", "fashion-mnist")


def candidate_dirs(root: Optional[str] = None) -> List[str]:
    """The directories searched for the files, in order."""
    dirs = [os.path.expanduser(root)] if root else []
    return dirs + [_mxnet_home_dir(), DEBIAN_DIR]


def holds_fashion_mnist(directory: str) -> bool:
    """Whether ``directory`` holds any of the four Fashion-MNIST files (a directory of
    them is Fashion-MNIST, whole or not: :func:`find_fashion_mnist` names what is missing)."""
    return any(os.path.isfile(os.path.join(directory, name))
               for imgs, labels, _ in FILES.values() for name in (imgs, labels))


def _has_all(directory: str) -> bool:
    return all(os.path.isfile(os.path.join(directory, name))
               for imgs, labels, _ in FILES.values() for name in (imgs, labels))


def find_fashion_mnist(root: Optional[str] = None, download: bool = True) -> str:
    """Return the first directory that holds all four Fashion-MNIST files.

    Parameters
    ----------
    root : str, optional
        The directory to use: it must exist and hold all four files (nothing
        else is searched, nothing downloaded).  Without it, the
        :func:`candidate_dirs` are searched in order.
    download : bool, default True
        When no directory has the files, ask Gluon's downloader to fill
        ``$MXNET_HOME/datasets/fashion-mnist``.

    Raises
    ------
    FileNotFoundError
        Nowhere has the files; the message lists where it looked and how to get them.
    """
    looked = candidate_dirs(root)
    names = [n for imgs, labels, _ in FILES.values() for n in (imgs, labels)]
    if root:
        # A directory the user names is the one to use: never another copy of
        # the data found elsewhere in its place.
        if not os.path.isdir(looked[0]):
            what = "is not a directory" if os.path.exists(looked[0]) else "does not exist"
            raise FileNotFoundError(
                f"the data directory {root} {what}. Name the directory that holds the four "
                f"Fashion-MNIST .gz files, or leave --data-dir out to search the usual "
                f"places.\n" + _HOW_TO_GET)
        missing = [n for n in names if not os.path.isfile(os.path.join(looked[0], n))]
        if missing:
            part = "only part of Fashion-MNIST" if len(missing) < len(names) else \
                "no Fashion-MNIST files"
            raise FileNotFoundError(
                f"{root} holds {part}: missing {', '.join(missing)}.\n"
                + _HOW_TO_GET)
        return looked[0]
    for directory in looked:
        if _has_all(directory):
            return directory
    reason = ""
    if download:
        target = _mxnet_home_dir()
        try:
            from mxnet.gluon.data.vision import FashionMNIST
            for train in (True, False):
                FashionMNIST(root=target, train=train)
            if _has_all(target):
                return target
        except Exception as err:  # the downloader's errors are network errors
            reason = f"\nGluon's downloader failed too: {type(err).__name__}: {err}"
    raise FileNotFoundError(
        "Fashion-MNIST not found. Looked in:\n"
        + "".join(f"  - {d}\n" for d in looked) + _HOW_TO_GET + reason)


def read_idx(path: str) -> np.ndarray:
    """Read one gzip-compressed IDX file (``ubyte`` data) into a uint8 array.

    Raises
    ------
    ValueError
        The file is not gzip, is truncated, has a wrong magic number or its
        size disagrees with its header; the message names the file.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: not a readable gzip IDX file ({err}). "
                         f"Delete it and fetch it again.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: bad IDX magic number {raw[:4].hex() or '(empty)'}, "
                         f"expected 000008NN (unsigned bytes). Not an IDX file.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise ValueError(f"{path}: IDX header truncated ({len(raw)} bytes).")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} bytes) but "
                         f"the file holds {len(raw)} bytes; it is truncated or corrupt.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(split: str = "train", root: Optional[str] = None
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Load one split as ``(images, labels)``: uint8 (N, 28, 28) and int32 (N,).

    Parameters
    ----------
    split : {'train', 'test'}
    root : str, optional
        A directory to look in first (see :func:`find_fashion_mnist`).
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    directory = find_fashion_mnist(root)
    img_name, lbl_name, count = FILES[split]
    images = read_idx(os.path.join(directory, img_name))
    labels = read_idx(os.path.join(directory, lbl_name))
    if images.shape != (count, 28, 28):
        raise ValueError(f"{os.path.join(directory, img_name)}: expected shape "
                         f"{(count, 28, 28)}, got {images.shape}.")
    if labels.shape != (count,) or labels.max() > 9:
        raise ValueError(f"{os.path.join(directory, lbl_name)}: expected {count} labels "
                         f"in 0..9, got shape {labels.shape}, max {labels.max()}.")
    return images, labels.astype(np.int32)


def resize_batch(images: np.ndarray, size: Optional[int] = None) -> nd.NDArray:
    """uint8 images (N, H, W), or (N, H, W, C) in colour, as the net's input: float32
    (N, 1 or C, size, size) in [0, 1].

    The book's ``Resize(size)`` then ``ToTensor()``, done on the whole batch
    in one operator call: bilinear with pixel centres at half-pixel offsets
    (OpenCV's convention, ``align_corners=False``), rounded to whole grey
    levels as the book's uint8 images are, then scaled by 1/255.  It matches
    the book's transform to within one grey level.
    """
    X = nd.array(images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2),
                 dtype="float32")
    if size and size != X.shape[-1]:
        X = nd.contrib.BilinearResize2D(X, height=size, width=size, align_corners=False).round()
    return X / 255


class BatchIter:
    """Mini-batches of ``(X, y)`` NDArrays: X float32 (B, C, R, R) in [0, 1], y float32.

    Every random choice (order, crops, flips) comes from a generator seeded
    by ``(seed, epoch, batch)``, so any batch of any epoch can be rebuilt
    exactly: a resumed run sees the very batches an uninterrupted one saw.
    Resizing happens per batch on the whole batch (one bilinear operator
    call), not per image in worker processes that would fight the model for
    the two cores.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (N, H, W) gray (Fashion-MNIST: (N, 28, 28)) or (N, H, W, C) colour
        (:func:`resnet_gluon.folders.load_image_folder`).
    labels : numpy.ndarray
        (N,) integer labels.
    batch_size : int
        Examples per batch (per worker when ``num_parts > 1``).
    shuffle : bool, default False
        A new order every epoch.
    resize : int, optional
        Side of the square images fed to the net (the book's 96); None keeps 28.
    augment : bool, default False
        Random crop (28x28 out of the image padded by 2 pixels) and random
        horizontal flip, on the uint8 images before resizing.
    erase : float, default 0.0
        Probability of random erasing (Zhong et al., 2017) per training image:
        a rectangle of 2-40% of the image, aspect ratio 0.3-3.3, filled with
        uniform noise; after the crop and flip, before resizing.
    seed : int, default 0
        Seed of every random choice.
    num_parts, part_index : int, default 1, 0
        Take only every ``num_parts``-th example of each epoch's order,
        starting at ``part_index``: one worker's shard in distributed training.
    normalize : (sequence of float, sequence of float), optional
        Per-channel ``(mean, std)`` of the pixel values / 255 (a training set's,
        :meth:`resnet_gluon.folders.FolderData.channel_stats`): each batch becomes
        ``(X - mean) / std`` after resizing.  None (the book): values stay in [0, 1].
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int,
                 shuffle: bool = False, resize: Optional[int] = None, augment: bool = False,
                 seed: int = 0, num_parts: int = 1, part_index: int = 0, erase: float = 0.0,
                 normalize: Optional[Tuple[Sequence[float], Sequence[float]]] = None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        POSITIVE_INT.check("batch_size", batch_size)
        if not 0 <= part_index < num_parts:
            raise ValueError(f"part_index must be in [0, {num_parts}), got {part_index}.")
        PROBABILITY.check("erase", erase)
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.resize = batch_size, shuffle, resize
        self.augment, self.erase, self.seed = augment, erase, seed
        self.num_parts, self.part_index = num_parts, part_index
        self.stats = normalize  # what the batches were normalised with (None: not at all)
        self.normalize = normalizer(normalize, 1 if images.ndim == 3 else images.shape[3])
        self._epoch = 0

    @property
    def num_examples(self) -> int:
        """Examples per epoch in this shard."""
        return len(range(self.part_index, len(self.images), self.num_parts))

    def __len__(self) -> int:
        return (self.num_examples + self.batch_size - 1) // self.batch_size

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.images)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        return order[self.part_index::self.num_parts]

    def _augment(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, h, w = batch.shape[:3]
        padded = np.pad(batch, ((0, 0), (2, 2), (2, 2)) + ((0, 0),) * (batch.ndim - 3))
        dy, dx = rng.integers(0, 5, size=n), rng.integers(0, 5, size=n)
        rows = dy[:, None] + np.arange(h)[None, :]
        cols = dx[:, None] + np.arange(w)[None, :]
        out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
        flip = rng.random(n) < 0.5
        out[flip] = out[flip, :, ::-1]
        return out

    def _erase(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Vectorised over the batch: one rectangle per image, drawn as in
        # Zhong et al. (area 0.02-0.4 of the image, aspect 0.3-3.3).
        n, h, w = batch.shape[:3]
        area = rng.uniform(0.02, 0.4, n) * h * w
        aspect = rng.uniform(0.3, 1 / 0.3, n)
        eh = np.clip(np.round(np.sqrt(area * aspect)), 1, h).astype(int)
        ew = np.clip(np.round(np.sqrt(area / aspect)), 1, w).astype(int)
        y0 = (rng.random(n) * (h - eh + 1)).astype(int)
        x0 = (rng.random(n) * (w - ew + 1)).astype(int)
        ys, xs = np.arange(h)[None, :], np.arange(w)[None, :]
        rows = (ys >= y0[:, None]) & (ys < (y0 + eh)[:, None])
        cols = (xs >= x0[:, None]) & (xs < (x0 + ew)[:, None])
        mask = rows[:, :, None] & cols[:, None, :] & (rng.random(n) < self.erase)[:, None, None]
        if batch.ndim == 4:  # the rectangle covers every channel of its pixels
            mask = mask[..., None]
        noise = rng.integers(0, 256, size=batch.shape, dtype=np.uint8)
        return np.where(mask, noise, batch)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Tuple[nd.NDArray, nd.NDArray]]:
        """The batches of ``epoch`` (0-based), from batch number ``start`` on."""
        order = self._order(epoch)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            images = self.images[idx]
            if self.augment:
                images = self._augment(images, np.random.default_rng([self.seed, epoch, b, 1]))
            if self.erase:
                images = self._erase(images, np.random.default_rng([self.seed, epoch, b, 2]))
            yield (self.normalize(resize_batch(images, self.resize)),
                   nd.array(self.labels[idx], dtype="float32"))

    def __iter__(self) -> Iterator[Tuple[nd.NDArray, nd.NDArray]]:
        # Plain iteration (d2lzh.train_ch5, a user's loop) moves on an epoch each time.
        epoch, self._epoch = self._epoch, self._epoch + 1
        return self.batches(epoch)


def normalizer(stats: Optional[Tuple[Sequence[float], Sequence[float]]], channels: int):
    """``X -> (X - mean) / std`` per channel (``stats``: ``(mean, std)``, one value per
    channel), or ``X -> X`` without ``stats``."""
    if stats is None:
        return lambda X: X
    mean, std = (np.asarray(v, dtype=np.float32).reshape(-1) for v in stats)
    if mean.shape != (channels,) or std.shape != (channels,) or not (std > 0).all():
        raise ValueError(f"normalize must be (mean, std) with one value per channel ("
                         f"{channels}) and std > 0, got {stats!r}.")
    mean_nd = nd.array(mean.reshape(1, -1, 1, 1))
    std_nd = nd.array(std.reshape(1, -1, 1, 1))
    return lambda X: nd.broadcast_div(nd.broadcast_sub(X, mean_nd), std_nd)


#: The validation split's own random stream (apart from the order's and augmentation's): the
#: same seed holds out the same images whatever the other options.
_VAL_STREAM = 7
_SAMPLE_STREAM = 11  # the random stream of stratified_sample, apart from the split's


def split_validation(images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``count`` examples: ``(train_images, train_labels, val_images, val_labels)``.

    The held-out examples are a seeded random choice (the same for the same
    ``seed`` and data); both parts keep the data's order, so a ``limit_train``
    taken afterwards is the first N of what is left for training.
    """
    NONNEGATIVE_INT.check("val_split", count)
    if count >= len(images):
        raise ValueError(f"val_split must leave training examples: got {count} of "
                         f"{len(images)}. Hold out fewer (5,000 of the 60,000 is usual).")
    held = np.zeros(len(images), dtype=bool)
    held[np.random.default_rng([seed, _VAL_STREAM]).permutation(len(images))[:count]] = True
    return images[~held], labels[~held], images[held], labels[held]


def stratified_sample(labels: np.ndarray, count: Optional[int], seed: int = 0) -> np.ndarray:
    """Indices of ``count`` examples, a seeded random choice in which each class keeps its
    share (rounded by largest remainders, at least one of each while ``count`` allows), in
    the data's order; all of them when ``count`` is None or not below their number.

    What ``--limit-train``/``--limit-test`` take of an image folder, whose files come class
    by class: its first N would be one class.
    """
    n = len(labels)
    if count is None or count >= n:
        return np.arange(n)
    POSITIVE_INT.check("limit", count)
    classes, sizes = np.unique(labels, return_counts=True)
    share = sizes * count / n
    take = np.floor(share).astype(int)
    if count >= len(classes):  # every class is seen
        take = np.maximum(take, 1)
    while take.sum() > count:  # the floors of 1 overshot: trim a class that keeps one
        take[np.argmax(np.where(take > 1, take - share, -np.inf))] -= 1
    for k in np.argsort(-(share - take), kind="stable")[:count - take.sum()]:
        take[k] += 1
    rng = np.random.default_rng([seed, _SAMPLE_STREAM])
    chosen = [rng.choice(np.flatnonzero(labels == c), t, replace=False)
              for c, t in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


class Splits(NamedTuple):
    """The three iterators of a run; ``val`` is None without a validation split, ``test``
    None for an image folder without a test folder."""

    train: BatchIter
    test: Optional[BatchIter]
    val: Optional[BatchIter] = None


def hold_out(images: np.ndarray, labels: np.ndarray, val_split: int, seed: int,
             limit_train: Optional[int], batch_size: int, sample: bool = False
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`split_validation`, then ``limit_train`` (the first N, or with ``sample`` a
    :func:`stratified_sample`), refusing a split that leaves too little to train on:
    ``(train_images, train_labels, val_images, val_labels)``."""
    train_x, train_y, val_x, val_y = split_validation(images, labels, val_split, seed)
    if val_split:  # what is left must train on: say so rather than train on a handful
        if limit_train is not None and limit_train > len(train_x):
            raise ValueError(f"limit_train {limit_train} asks for more training images than "
                             f"the {len(train_x)} left after holding out {val_split}; lower "
                             f"--limit-train or --val-split.")
        if len(train_x) < batch_size:
            raise ValueError(f"holding out {val_split} images leaves {len(train_x)} to train "
                             f"on, less than one batch of {batch_size}; hold out fewer "
                             f"(5,000 of the 60,000 is usual).")
    keep = stratified_sample(train_y, limit_train, seed) if sample else slice(limit_train)
    return train_x[keep], train_y[keep], val_x, val_y


def load_splits(batch_size: int, resize: Optional[int] = None, root: Optional[str] = None,
                limit_train: Optional[int] = None, limit_test: Optional[int] = None,
                augment: bool = False, seed: int = 0, num_parts: int = 1, part_index: int = 0,
                erase: float = 0.0, val_split: int = 0) -> Splits:
    """Training, test and (with ``val_split``) validation iterators.

    ``val_split`` examples are held out of the 60,000 training images first
    (:func:`split_validation`, seeded by ``seed``), then ``limit_train`` keeps
    the first N of the rest.  The validation iterator is whole on every worker.
    Other parameters as in :func:`load_data_fashion_mnist`.
    """
    train_x, train_y, val_x, val_y = hold_out(*load_fashion_mnist("train", root), val_split,
                                              seed, limit_train, batch_size)
    test_x, test_y = load_fashion_mnist("test", root)
    train = BatchIter(train_x, train_y, batch_size, shuffle=True, resize=resize,
                      augment=augment, seed=seed, num_parts=num_parts, part_index=part_index,
                      erase=erase)
    test = BatchIter(test_x[:limit_test], test_y[:limit_test], batch_size, resize=resize)
    val = BatchIter(val_x, val_y, batch_size, resize=resize) if val_split else None
    return Splits(train, test, val)


def load_data_fashion_mnist(batch_size: int, resize: Optional[int] = None,
                            root: Optional[str] = None, limit_train: Optional[int] = None,
                            limit_test: Optional[int] = None, augment: bool = False,
                            seed: int = 0, num_parts: int = 1, part_index: int = 0,
                            erase: float = 0.0) -> Tuple[BatchIter, BatchIter]:
    """The book's ``load_data_fashion_mnist``, offline: ``(train_iter, test_iter)``.

    Parameters
    ----------
    batch_size : int
    resize : int, optional
        The book uses 96; None keeps the native 28.
    root : str, optional
        A directory to look in first (see :func:`find_fashion_mnist`).
    limit_train, limit_test : int, optional
        Keep the first N examples, for quick runs.
    augment, seed, num_parts, part_index, erase
        For the training iterator; see :class:`BatchIter`.
    """
    splits = load_splits(batch_size, resize, root, limit_train, limit_test, augment, seed,
                         num_parts, part_index, erase)
    return splits.train, splits.test
