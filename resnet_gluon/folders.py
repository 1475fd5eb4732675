"""Your own images: a folder of class sub-folders, decoded once into memory.

The layout is that of ``gluon.data.vision.ImageFolderDataset`` and torchvision's
``ImageFolder``: ``ROOT/CLASS/IMAGE``.  The class names are the sub-folder names, sorted as
``ImageFolderDataset`` sorts them, and an image's label is its class's position; within a
class, files are taken in sorted order.  PNG, JPEG and BMP files of any size, gray or colour,
are read through :func:`resnet_gluon.images.read_image_file` (regular files only, bounded,
decoded whole by Pillow, at most 50 megapixels), in threads (Pillow's decoders and resize
release the GIL), shrunk or enlarged so that the shorter side is ``size``, and centre-cropped
to ``size`` x ``size``: a set that fits in memory then gives batches as Fashion-MNIST does
(:class:`resnet_gluon.sources.ImageFolder` makes a run's batches of it).

Every problem is a ``ValueError`` naming the folder or file and what to do: a missing or
empty folder, a single class, a class folder without images, a symlink loop, a corrupt or
truncated image (unless ``skip_bad_images``, which names each one skipped).  Files that are
not images (by extension) are skipped and counted.
"""
import concurrent.futures
import dataclasses
import hashlib
import os
import stat
import time
import unicodedata
from typing import Dict, List, Optional, Tuple

import numpy as np

from .images import GRAY_MODES, IMAGE_EXTENSIONS, read_file_bytes, read_image_file

__all__ = ["FolderData", "HELD_OUT", "folder_layout", "list_image_folder", "read_square",
           "image_modes", "file_marks", "load_image_folder", "check_same_classes"]

#: The held-out folders of the book's layout (d2l's Kaggle CIFAR-10 chapter: ``train/``,
#: ``valid/``, ``train_valid/``, ``test/``), in the order looked for.
HELD_OUT = ("test", "valid")



@dataclasses.dataclass
class FolderData:
    """The decoded images of a folder, in the order of :func:`list_image_folder`.

    Attributes
    ----------
    images : numpy.ndarray
        uint8, (N, size, size) for gray images, (N, size, size, 3) for colour.
    labels : numpy.ndarray
        int32 (N,): positions in ``classes``.
    classes : list of str
        The class (sub-folder) names, sorted.
    files : list of str
        The file of each image.
    ignored : list of str
        Files skipped because they are not images (by their extension).
    skipped : list of (str, str)
        Images skipped as unreadable (``skip_bad_images``), with why.
    seconds : float
        How long decoding took.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: List[str]
    files: List[str]
    ignored: List[str] = dataclasses.field(default_factory=list)
    skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def channels(self) -> int:
        """1 for gray images, 3 for colour."""
        return 1 if self.images.ndim == 3 else 3

    def channel_stats(self) -> Tuple[List[float], List[float]]:
        """Per-channel mean and standard deviation of the pixel values / 255: what
        normalising with this set's statistics subtracts and divides by."""
        # Summed in chunks: a float64 copy of 60,000 64x64 images would take 2 GB.
        total = np.zeros(self.channels)
        squares = np.zeros(self.channels)
        for start in range(0, len(self.images), 1024):
            x = self.images[start:start + 1024].reshape(-1, self.channels).astype(np.float64)
            total += x.sum(axis=0)
            squares += (x * x).sum(axis=0)
        count = self.images.size // self.channels
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        return (mean / 255).tolist(), (std / 255).tolist()


def _entries(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path))
    except OSError as err:  # a symlink loop (ELOOP), no permission, gone meanwhile
        raise ValueError(f"{path}: cannot list it ({err.strerror}).") from None


def list_image_folder(root: str) -> Tuple[List[str], List[int], List[str], List[str]]:
    """``(files, labels, classes, ignored)`` of an image folder, without decoding anything.

    Raises
    ------
    ValueError
        ``root`` is missing or not a folder, holds fewer than two class folders, or a
        class folder holds no image; the message names it and the layout expected.
    """
    layout = (f"expected {root}/CLASS/IMAGE: one sub-folder per class, holding its PNG, "
              f"JPEG or BMP files")
    if not os.path.isdir(root):
        what = "is not a folder" if os.path.exists(root) else "does not exist"
        raise ValueError(f"{root} {what}; {layout}.")
    entries = _entries(root)
    # Sorted and named in NFC: macOS writes "café" decomposed (NFD), Linux as typed; the
    # same class must be one name, in one place, on either side of a train/test pair.
    folders = sorted((name for name in entries if os.path.isdir(os.path.join(root, name))),
                     key=_nfc)
    classes = [_nfc(name) for name in folders]
    if len(classes) < 2:
        found = f"only the class folder {classes[0]!r}" if classes else "no class folders"
        raise ValueError(f"{root} holds {found}; a classifier needs two classes or more; "
                         f"{layout}.")
    # Files beside the class folders (and links that lead nowhere) are not classes.
    files, labels, ignored = [], [], [os.path.join(root, n) for n in entries if n not in folders]
    for label, name in enumerate(folders):
        folder = os.path.join(root, name)
        found = 0
        for entry in _entries(folder):
            path = os.path.join(folder, entry)
            if entry.lower().endswith(IMAGE_EXTENSIONS) and not os.path.isdir(path):
                files.append(path)
                labels.append(label)
                found += 1
            else:
                ignored.append(path)
        if not found:
            raise ValueError(f"the class folder {folder} holds no PNG, JPEG or BMP file; "
                             f"add its images or remove the folder.")
    return files, labels, classes, ignored


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _square(path: str, size: int, channels: Optional[int] = None) -> Tuple[np.ndarray, bool]:
    """One file as uint8 (size, size) gray or (size, size, 3) colour, and whether it was
    colour: made ``channels`` (None: as it is), the shorter side scaled to ``size``, then
    the centre ``size`` x ``size``."""
    from PIL import Image

    _, im = read_image_file(path)  # upright, 8-bit, 'L' or 'RGB'
    colour = im.mode == "RGB"
    if channels:  # before the resize, as the ONNX recipe in docs/own-images.md does
        im = im.convert("RGB" if channels == 3 else "L")  # luma: ITU-R 601, as Pillow
    w, h = im.size
    scale = size / min(w, h)
    tw, th = max(size, round(w * scale)), max(size, round(h * scale))
    left, top = (tw - size) // 2, (th - size) // 2
    if (tw, th) != (w, h):
        # Only the centre square is resampled (the box, in the file's pixels): the same
        # pixels as scaling the whole image and cropping, without the whole image's cost.
        sx, sy = w / tw, h / th
        im = im.resize((size, size), Image.BILINEAR,  # Pillow averages when it shrinks
                       box=(left * sx, top * sy, (left + size) * sx, (top + size) * sy))
    else:
        im = im.crop((left, top, left + size, top + size))
    return np.asarray(im, dtype=np.uint8), colour


def _mode(path: str) -> str:
    """'colour' or 'gray' from the file's header alone (nothing decoded), 'unknown' when
    it cannot be read (decoding names it later)."""
    from PIL import Image

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block, a device not end
            return "unknown"
        with Image.open(path) as im:
            return "gray" if im.mode in GRAY_MODES else "colour"
    except Exception:  # Pillow raises many kinds for a bad file; the decoder will say why
        return "unknown"


def _mark(path: str) -> str:
    """``SIZE:HASH`` of a file's bytes (BLAKE2b, 8 bytes): what changes when it is edited;
    read as every image file is (regular, bounded: a FIFO named x.png would block)."""
    try:
        raw = read_file_bytes(path)
    except ValueError as err:
        return f"unreadable: {err}"
    return f"{len(raw)}:{hashlib.blake2b(raw, digest_size=8).hexdigest()}"


def file_marks(root: str, workers: Optional[int] = None) -> Dict[str, str]:
    """``{path within root: SIZE:HASH}`` of an image folder's images (:func:`_mark`), read
    in threads: its fingerprint (:class:`resnet_gluon.inputs.Fingerprint`)."""
    files = list_image_folder(root)[0]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        marks = list(pool.map(_mark, files))
    return {os.path.relpath(f, root): m for f, m in zip(files, marks)}


def image_modes(files: List[str], workers: Optional[int] = None) -> List[str]:
    """'colour', 'gray' or 'unknown' for each file, from its header: what a folder's
    channels are before anything is decoded."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        return list(pool.map(_mode, files))


def _as_channels(image: np.ndarray, channels: int) -> np.ndarray:
    from PIL import Image

    if channels == 3 and image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if channels == 1 and image.ndim == 3:
        return np.asarray(Image.fromarray(image).convert("L"))  # ITU-R 601 luma, as Pillow
    return image


def read_square(path: str, size: int, channels: int) -> np.ndarray:
    """One image file as a folder's images are kept: uint8 (size, size) for ``channels`` 1,
    (size, size, 3) for 3; the shorter side scaled to ``size``, the centre cropped."""
    return _square(path, size, channels)[0]


def load_image_folder(root: str, size: int, channels: Optional[int] = None,
                      skip_bad_images: bool = False, workers: Optional[int] = None
                      ) -> FolderData:
    """Decode an image folder into memory (see the module's docstring).

    Parameters
    ----------
    root : str
        ``ROOT/CLASS/IMAGE``.
    size : int
        Side of the square images kept.
    channels : {None, 1, 3}
        None: 3 if any image is colour, else 1; 1 or 3 forces it (colour made gray by
        Pillow's luma, gray repeated over R, G and B).
    skip_bad_images : bool, default False
        Skip unreadable, truncated or oversized images (each named in ``skipped``) instead
        of stopping at them.
    workers : int, optional
        Decoding threads (default: the CPU count).

    Raises
    ------
    ValueError
        See :func:`list_image_folder`; or an image cannot be read (unless
        ``skip_bad_images``), named with why and how many more there are.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (gray), 3 (colour) or None (what the images "
                         f"are), got {channels!r}.")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}.")
    files, labels, classes, ignored = list_image_folder(root)
    tic = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        results = list(pool.map(lambda path: _decoded(path, size, channels), files))
    bad = [(path, result) for path, result in zip(files, results) if isinstance(result, str)]
    if bad and not skip_bad_images:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"{bad[0][1]}{more}. Fix or remove it, or skip such files with "
                         f"--skip-bad-images.")
    keep = [i for i, result in enumerate(results) if not isinstance(result, str)]
    if channels is None:
        channels = 3 if any(results[i][1] for i in keep) else 1
    emptied = sorted(set(labels) - {labels[i] for i in keep})
    if emptied:
        raise ValueError(f"every image of the class {classes[emptied[0]]!r} was skipped as "
                         f"unreadable; the class would have none to learn from.")
    images = np.stack([_as_channels(results[i][0], channels) for i in keep])
    return FolderData(images, np.asarray([labels[i] for i in keep], dtype=np.int32), classes,
                      [files[i] for i in keep], ignored, bad, time.time() - tic)


def _decoded(path: str, size: int, channels: Optional[int]):
    """:func:`_square` of the file, or the ``ValueError``'s words when it cannot be read."""
    try:
        return _square(path, size, channels)
    except ValueError as err:
        return str(err)


def check_same_classes(train: List[str], test: List[str], train_root: str, test_root: str
                       ) -> None:
    """Refuse a test folder whose classes are not the training folder's: its labels would
    be positions in another list, and every accuracy wrong."""
    if train != test:
        only_train = sorted(set(train) - set(test))
        only_test = sorted(set(test) - set(train))
        raise ValueError(f"the classes of {test_root} differ from those of {train_root}: "
                         f"only in training {only_train}, only in the test folder "
                         f"{only_test}. Give both the same class folders.")


def folder_layout(root: str) -> Tuple[str, Optional[str]]:
    """``(training folder, test folder or None)`` of ``root``.

    ``root/train`` holding class folders, with ``root/test`` or ``root/valid``, is the book's
    layout: the test folder is ``test`` when its classes are the training folder's, else
    ``valid`` (the book's ``test/`` holds one unlabelled folder, ``unknown``).  Otherwise
    ``root`` itself holds the class folders (one of them may be called ``train``, as in
    bus/car/train) and there is no test folder.
    """
    train = os.path.join(root, "train")
    if not os.path.isdir(train) or not any(
            os.path.isdir(os.path.join(train, name)) for name in _entries(train)):
        return root, None
    found = [os.path.join(root, n) for n in HELD_OUT if os.path.isdir(os.path.join(root, n))]
    if not found:
        return train, None
    classes = list_image_folder(train)[2]
    for held in found:
        try:
            if list_image_folder(held)[2] == classes:
                return train, held
        except ValueError:  # the book's test/ holds one unlabelled class, "unknown"
            continue
    # None fits: name why the first does not (its own problem, or its other classes).
    check_same_classes(classes, list_image_folder(found[0])[2], train, found[0])
    return train, found[0]  # pragma: no cover - check_same_classes raised
