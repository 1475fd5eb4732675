"""MXNet RecordIO, for image sets that do not fit in memory: pack a folder, stream it back.

:func:`pack` writes ``PREFIX.rec`` + ``PREFIX.idx`` in the ``im2rec`` format with MXNet's
own ``mx.recordio`` (each record: the label in an ``IRHeader``, then the image file's bytes
as they are, checked whole first by :func:`resnet_gluon.images.read_image_file`; in a
seeded random order, as ``im2rec --shuffle`` writes them), and
``PREFIX.json`` with what a run records: the class names, the channels (3 if any image is
colour), the per-channel mean and std of the pixel values / 255 (over the images as stored)
and the count.

:class:`RecordBatches` streams a ``.rec`` through MXNet's ``ImageRecordIter``: its C++
decoding and augmentation threads, the shorter side scaled to the input side and the centre
cropped (a random crop of the image padded by 2 pixels and a random flip with ``augment``),
normalised with the pack's mean and std, each ``dist_sync`` worker reading its own shard
(``num_parts``/``part_index``: records ``[k * ceil(n / parts), (k + 1) * ceil(n / parts))``).
Each epoch's order and augmentation are seeded by ``(seed, epoch)``; a resumed run skips to
its step, but ``ImageRecordIter``'s augmentation threads do not promise the same draws, so
resume from a ``.rec`` is not bit-identical (an image folder's is).

A run's batches of a ``.rec`` are :class:`resnet_gluon.sources.RecordFile`'s.
"""
import concurrent.futures
import json
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import mxnet as mx
import numpy as np
from mxnet import nd

from .folders import list_image_folder
from .images import read_image_file

__all__ = ["pack", "read_pack_info", "RecordBatches"]

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
#: Files read and checked at a time while packing: a set that does not fit in memory packs.
_CHUNK = 512


def _paths(prefix: str) -> Tuple[str, str, str]:
    return prefix + ".rec", prefix + ".idx", prefix + ".json"


def _sums(path: str) -> Tuple[bytes, bool, np.ndarray]:
    """The file's bytes, whether it is colour, and its pixel sums: [count, sum and sum of
    squares of the RGB channels, of gray]."""
    raw, im = read_image_file(path)
    colour = im.mode not in _GRAY_MODES
    rgb = np.asarray(im.convert("RGB"), dtype=np.float64).reshape(-1, 3)
    gray = np.asarray(im.convert("L"), dtype=np.float64).reshape(-1)
    return raw, colour, np.concatenate([[len(gray)], rgb.sum(0), (rgb * rgb).sum(0),
                                        [gray.sum(), (gray * gray).sum()]])


def pack(root: str, prefix: str, workers: Optional[int] = None,
         log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Write the image folder ``root`` (``CLASS/IMAGE``) as ``PREFIX.rec``, ``.idx`` and
    ``.json``; return what the ``.json`` holds.

    Every image is checked whole as it is packed, a chunk at a time (a bad one is named and
    nothing is left behind); the three files appear only when complete.  Files that are not
    images are skipped and counted in one line to ``log``.

    Raises
    ------
    ValueError
        The folder is not a data set (see :func:`resnet_gluon.folders.list_image_folder`),
        an image cannot be read, or an output file exists already.
    """
    files, labels, classes, ignored = list_image_folder(root)
    outputs = _paths(prefix)
    there = [p for p in outputs if os.path.exists(p)]
    if there:
        raise ValueError(f"{there[0]} exists; remove it or give another PREFIX (pack never "
                         f"writes over a file).")
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    temps = [os.path.join(directory, f".{os.path.basename(p)}.tmp") for p in outputs]
    try:
        colour, sums = _write_records(files, labels, temps[:2], workers)
        first, second = (sums[1:4], sums[4:7]) if colour else (sums[7:8], sums[8:9])
        mean = first / sums[0]
        std = np.sqrt(np.maximum(second / sums[0] - mean * mean, 0.0))
        info = {"classes": classes, "channels": 3 if colour else 1, "count": len(files),
                "mean": (mean / 255).tolist(), "std": (std / 255).tolist(),
                "source": os.path.abspath(root)}
        with open(temps[2], "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1)
        for temp, out in zip(temps, outputs):
            os.replace(temp, out)
    finally:  # a bad image or a full disk leaves nothing behind
        for temp in temps:
            if os.path.exists(temp):
                os.remove(temp)
    if ignored and log:
        log(f"skipped {len(ignored):,} files that are not PNG, JPEG or BMP images, first "
            f"{ignored[0]}")
    return info


def _write_records(files: List[str], labels: List[int], paths: List[str],
                   workers: Optional[int]) -> Tuple[bool, np.ndarray]:
    """Write the records (``paths``: the .rec and .idx), a chunk of files at a time (the set
    may not fit in memory), and return whether any image is colour and the pixel sums."""
    writer = mx.recordio.MXIndexedRecordIO(paths[1], paths[0], "w")
    # In a seeded random order, as im2rec's --shuffle: a dist_sync worker's shard is a run
    # of records, and class by class it would hold a few classes only.
    order = np.random.default_rng(0).permutation(len(files))
    colour, sums = False, np.zeros(9)
    try:
        with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
            for start in range(0, len(order), _CHUNK):
                chunk = order[start:start + _CHUNK]
                read = list(pool.map(_checked, [files[k] for k in chunk]))
                bad = [r for r in read if isinstance(r, str)]
                if bad:
                    more = f" (and {len(bad) - 1} more near it)" if len(bad) > 1 else ""
                    raise ValueError(f"{bad[0]}{more}. Fix or remove it, then pack again; "
                                     f"nothing was written.")
                for i, k, (raw, is_colour, pixel_sums) in zip(range(start, len(order)),
                                                              chunk, read):
                    header = mx.recordio.IRHeader(0, labels[k], i, 0)
                    writer.write_idx(i, mx.recordio.pack(header, raw))
                    colour, sums = colour or is_colour, sums + pixel_sums
    finally:
        writer.close()
    return colour, sums


def _checked(path: str):
    try:
        return _sums(path)
    except ValueError as err:
        return str(err)


def read_pack_info(rec: str) -> Dict[str, Any]:
    """The ``.json`` :func:`pack` wrote beside ``rec``, after checking the ``.idx`` is there.

    Raises
    ------
    ValueError
        ``rec`` is not a ``.rec`` file, or its ``.idx`` or ``.json`` is missing or unreadable.
    """
    if not rec.endswith(".rec") or not os.path.isfile(rec):
        raise ValueError(f"{rec}: not a .rec file (write one with: python -m resnet_gluon "
                         f"pack IMAGE_FOLDER PREFIX).")
    _, idx, meta = _paths(rec[:-len(".rec")])
    for path, what in ((idx, "index"), (meta, "class names")):
        if not os.path.isfile(path):
            raise ValueError(f"{rec} has no {path} ({what}) beside it; 'pack' writes the "
                             f".rec, .idx and .json together: pack the folder again.")
    try:
        with open(meta, encoding="utf-8") as f:
            info = json.load(f)
        with open(idx, encoding="utf-8") as f:
            count = sum(1 for _ in f)
        if not isinstance(info, dict):
            raise ValueError(f"a JSON {type(info).__name__}, not the object pack writes")
    except (OSError, ValueError) as err:
        raise ValueError(f"{meta} or {idx} cannot be read ({err}); pack the folder again.") \
            from None
    if count != info.get("count"):
        raise ValueError(f"{idx} lists {count} records but {meta} says {info.get('count')}: "
                         f"the files are not of one pack; pack the folder again.")
    return info


class RecordBatches:
    """``(X, y)`` batches of a ``.rec`` through ``ImageRecordIter`` (see the module's
    docstring), with a length, and ``batches(epoch, start)`` as
    :class:`resnet_gluon.data.BatchIter` has.

    Parameters
    ----------
    rec : str
        A ``.rec`` written by :func:`pack`.
    batch_size, resize : int
    channels : {1, 3}
    normalize : (list of float, list of float)
        Per-channel mean and std of the pixel values / 255.
    shuffle, augment : bool
    seed : int
    num_parts, part_index : int
    threads : int, optional
        ``ImageRecordIter``'s decoding threads (default: the CPU count).
    """

    def __init__(self, rec: str, batch_size: int, resize: int, channels: int,
                 normalize: Tuple[List[float], List[float]], shuffle: bool = False,
                 augment: bool = False, seed: int = 0, num_parts: int = 1,
                 part_index: int = 0, threads: Optional[int] = None):
        count = read_pack_info(rec)["count"]
        step = -(-count // num_parts)  # dmlc's IndexedRecordIOSplitter: by record count
        self.num_examples = max(0, min(step * (part_index + 1), count) - step * part_index)
        self.rec, self.batch_size, self.resize, self.channels = rec, batch_size, resize, channels
        self.mean, self.std = (list(v) for v in normalize)
        self.shuffle, self.augment, self.seed = shuffle, augment, seed
        self.num_parts, self.part_index = num_parts, part_index
        self.threads = threads or os.cpu_count()
        self._epoch = 0

    def __len__(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def _iter(self, epoch: int) -> mx.io.ImageRecordIter:
        c = self.channels
        norm = {}
        for i, name in enumerate("rgb"[:c]):
            norm[f"mean_{name}"] = self.mean[i] * 255
            norm[f"std_{name}"] = self.std[i] * 255
        return mx.io.ImageRecordIter(
            path_imgrec=self.rec, path_imgidx=self.rec[:-len(".rec")] + ".idx",
            data_shape=(c, self.resize, self.resize), batch_size=self.batch_size,
            resize=self.resize, rand_crop=self.augment, rand_mirror=self.augment,
            pad=2 if self.augment else 0, shuffle=self.shuffle,
            seed=int(np.random.default_rng([self.seed, epoch]).integers(2**31)),
            num_parts=self.num_parts, part_index=self.part_index, round_batch=False,
            preprocess_threads=self.threads, label_width=1, **norm)

    def batches(self, epoch: int, start: int = 0) -> Iterator[Tuple[nd.NDArray, nd.NDArray]]:
        """The batches of ``epoch`` (0-based), from batch number ``start`` on."""
        for b, batch in enumerate(self._iter(epoch)):
            if b >= len(self):
                break
            if b >= start:
                # The last batch: ImageRecordIter (round_batch=False) may fill it up with
                # stale rows and report no pad; the shard's count says how many are real.
                keep = min(self.batch_size - (batch.pad or 0),
                           self.num_examples - b * self.batch_size)
                # Copies: the iterator refills its (pinned) buffers with the next batch.
                yield (batch.data[0][:keep].copyto(mx.cpu()),
                       batch.label[0][:keep].copyto(mx.cpu()))

    def __iter__(self) -> Iterator[Tuple[nd.NDArray, nd.NDArray]]:
        epoch, self._epoch = self._epoch, self._epoch + 1
        return self.batches(epoch)
