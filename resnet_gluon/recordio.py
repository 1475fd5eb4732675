"""MXNet RecordIO, for image sets that do not fit in memory: pack a folder, stream it back.

:func:`pack` writes ``PREFIX.rec`` + ``PREFIX.idx`` in the ``im2rec`` format with MXNet's
own ``mx.recordio`` (each record: the label in an ``IRHeader``, then a PNG of the image; in a
seeded random order, as ``im2rec --shuffle`` writes them), and ``PREFIX.json``
(:class:`PackInfo`): the class names, the channels (3 if any image is colour), the size, the
per-channel mean and std of the pixel values / 255, the count and a digest of the records.

Each image is stored as the folder reader keeps it (:func:`resnet_gluon.folders.read_square`:
the one decoder, upright, 8-bit, the shorter side scaled to ``size`` and the centre
cropped), losslessly: so a ``.rec`` trains on the very pixels that ``predict`` and an image
folder give for the same file, and its size is the run's input side.

:class:`RecordBatches` streams a ``.rec`` through MXNet's ``ImageRecordIter``: its C++
decoding and augmentation threads (a random crop of the image padded by 2 black pixels and a
random flip with ``augment``, as an image folder's batches), normalised with the pack's mean
and std, each ``dist_sync`` worker reading its own shard (``num_parts``/``part_index``:
records ``[k * ceil(n / parts), (k + 1) * ceil(n / parts))``).  Each epoch's order and
augmentation are seeded by ``(seed, epoch)``; a resumed run skips to its step, but
``ImageRecordIter``'s augmentation threads do not promise the same draws, so resume from a
``.rec`` is not bit-identical (an image folder's is).

A run's batches of a ``.rec`` are :class:`resnet_gluon.sources.RecordFile`'s.
"""
import concurrent.futures
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import struct
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import nd

from ._checks import RESIZE
from .folders import image_modes, list_image_folder, read_square

__all__ = ["PACK_SIZE", "PackInfo", "pack", "read_pack_info", "pack_labels", "read_records",
           "RecordBatches"]

#: The side of the images ``pack`` stores by default: the book's input side.
PACK_SIZE = 96
#: Files read and checked at a time while packing: a set that does not fit in memory packs.
_CHUNK = 512


def _paths(prefix: str) -> Tuple[str, str, str]:
    return prefix + ".rec", prefix + ".idx", prefix + ".json"


@dataclasses.dataclass(frozen=True)
class PackInfo:
    """What ``PREFIX.json`` says of a pack: all a run needs of its data but the pixels."""

    classes: Tuple[str, ...]
    channels: int
    size: int
    count: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    digest: str  #: SHA-256 of the records, in order: the data's fingerprint
    source: str = ""  #: the folder packed

    def __str__(self) -> str:
        return (f"{self.count:,} images of {len(self.classes)} classes "
                f"({'gray' if self.channels == 1 else 'colour'}, {self.size}x{self.size})")

    def _body(self) -> Dict[str, Any]:
        return {"classes": list(self.classes), "channels": self.channels, "size": self.size,
                "count": self.count, "mean": list(self.mean), "std": list(self.std),
                "digest": self.digest, "source": self.source}

    def to_dict(self) -> Dict[str, Any]:
        """The ``.json``'s content, with ``check``: a hash of the rest, so an edit shows."""
        return {**self._body(), "check": _check_of(self._body())}

    @classmethod
    def from_dict(cls, values: Any, path: str) -> "PackInfo":
        """The record in a ``.json`` (``path`` names it in errors).

        Raises
        ------
        ValueError
            One line naming the key that is missing or wrong, or saying the file was edited.
        """
        again = "pack the folder again"
        if not isinstance(values, dict):
            raise ValueError(f"{path} holds a JSON {type(values).__name__}, not the object "
                             f"pack writes; {again}.")
        expected = {"classes": "two class names or more", "channels": "1 or 3",
                    "size": "a side from 8 to 512", "count": "a positive number of images",
                    "mean": "a number per channel", "std": "a positive number per channel",
                    "digest": "the records' hash", "check": "the file's own hash"}
        missing = [key for key in expected if key not in values]
        if missing:
            raise ValueError(f"{path} has no {missing[0]!r} ({expected[missing[0]]}); it was "
                             f"not written whole by pack: {again}.")
        v, c = values, values["channels"]

        def numbers(x):
            return isinstance(x, list) and len(x) == c and all(
                isinstance(f, (int, float)) and not isinstance(f, bool) for f in x)

        ok = {"classes": isinstance(v["classes"], list) and len(v["classes"]) >= 2
              and all(isinstance(name, str) for name in v["classes"]),
              "channels": c in (1, 3) and not isinstance(c, bool),
              "size": type(v["size"]) is int and 8 <= v["size"] <= 512,
              "count": type(v["count"]) is int and v["count"] >= 1,
              "mean": numbers(v["mean"]), "std": numbers(v["std"]) and min(v["std"]) > 0,
              "digest": isinstance(v["digest"], str), "check": isinstance(v["check"], str)}
        for key, fine in ok.items():
            if not fine:
                raise ValueError(f"{path}: {key!r} is {v[key]!r:.60}, expected "
                                 f"{expected[key]} (with 'channels' {c!r}); {again}.")
        body = {k: v[k] for k in expected if k != "check"}
        if v["check"] != _check_of({**body, "source": v.get("source", "")}):
            raise ValueError(f"{path} was changed after pack wrote it (its 'check' does not "
                             f"match its content), so its classes or statistics may not be "
                             f"the records'; {again}.")
        return cls(tuple(v["classes"]), c, v["size"], v["count"], tuple(v["mean"]),
                   tuple(v["std"]), v["digest"], v.get("source", ""))


def _check_of(body: Dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


class _PrefixLock:
    """This process's hold on a pack's PREFIX (an ``flock`` on ``.NAME.lock`` beside it):
    two packs to one prefix would interleave their records.  The kernel drops it when the
    process ends, however it ends; the file goes when the pack ends."""

    def __init__(self, prefix: str):
        directory, name = os.path.split(os.path.abspath(prefix))
        self.path = os.path.join(directory, f".{name}.lock")
        while True:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._fd)
                raise ValueError(f"another pack is writing {prefix}; wait for it to end, or "
                                 f"give another PREFIX.") from None
            try:  # still the file at that path, not one a finished pack just removed?
                if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                    return
            except FileNotFoundError:
                pass
            os.close(self._fd)

    def __enter__(self) -> "_PrefixLock":
        return self

    def __exit__(self, *exc) -> None:
        os.remove(self.path)  # under the lock: a pack waiting on this file tries again
        os.close(self._fd)


def pack(root: str, prefix: str, size: int = PACK_SIZE, channels: Optional[int] = None,
         workers: Optional[int] = None, log: Optional[Callable[[str], None]] = None
         ) -> PackInfo:
    """Write the image folder ``root`` (``CLASS/IMAGE``) as ``PREFIX.rec``, ``.idx`` and
    ``.json``, each image stored at ``size`` x ``size`` (see the module's docstring).

    Every image is checked whole as it is packed, a chunk at a time (a bad one is named and
    nothing is left behind); the three files appear only when complete, written under
    temporary names while a lock keeps a second pack off the prefix.  Files that are not
    images are skipped and counted in one line to ``log``.

    Parameters
    ----------
    size : int, default 96
        The side of the images stored: the input side of the runs that train on the pack.
    channels : {None, 1, 3}
        None: 3 if any image is colour (from the files' headers), else 1.

    Raises
    ------
    ValueError
        The folder is not a data set (see :func:`resnet_gluon.folders.list_image_folder`),
        an image cannot be read, an output file exists already, or another pack is writing
        the prefix.
    """
    RESIZE.check("size", size, "(the side of the images stored, the runs' --resize)")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (gray), 3 (colour) or None (what the images "
                         f"are), got {channels!r}.")
    files, labels, classes, ignored = list_image_folder(root)
    outputs = _paths(prefix)
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    temps = [os.path.join(directory, f".{os.path.basename(p)}.tmp") for p in outputs]
    with _PrefixLock(prefix):
        there = [p for p in outputs if os.path.exists(p)]
        if there:
            raise ValueError(f"{there[0]} exists; remove it or give another PREFIX (pack "
                             f"never writes over a file).")
        if channels is None:
            channels = 3 if "colour" in image_modes(files, workers) else 1
        try:
            sums, digest = _write_records(files, labels, temps[:2], size, channels, workers)
            mean = sums[1] / sums[0]
            std = np.sqrt(np.maximum(sums[2] / sums[0] - mean * mean, 0.0))
            info = PackInfo(tuple(classes), channels, size, len(files),
                            tuple((mean / 255).tolist()), tuple((std / 255).tolist()), digest,
                            os.path.abspath(root))
            with open(temps[2], "w", encoding="utf-8") as f:
                json.dump(info.to_dict(), f, indent=1)
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


def _write_records(files: List[str], labels: List[int], paths: List[str], size: int,
                   channels: int, workers: Optional[int]) -> Tuple[List[Any], str]:
    """Write the records (``paths``: the .rec and .idx), a chunk of files at a time (the set
    may not fit in memory); return the pixel sums ``[count, sum, sum of squares]`` (per
    channel) and the records' SHA-256."""
    writer = mx.recordio.MXIndexedRecordIO(paths[1], paths[0], "w")
    # In a seeded random order, as im2rec's --shuffle: a dist_sync worker's shard is a run
    # of records, and class by class it would hold a few classes only.
    order = np.random.default_rng(0).permutation(len(files))
    sums, digest = [0, np.zeros(channels), np.zeros(channels)], hashlib.sha256()
    try:
        with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
            for start in range(0, len(order), _CHUNK):
                chunk = order[start:start + _CHUNK]
                read = list(pool.map(lambda k: _stored(files[k], size, channels), chunk))
                bad = [r for r in read if isinstance(r, str)]
                if bad:
                    more = f" (and {len(bad) - 1} more near it)" if len(bad) > 1 else ""
                    raise ValueError(f"{bad[0]}{more}. Fix or remove it, then pack again; "
                                     f"nothing was written.")
                for i, k, (png, pixels) in zip(range(start, len(order)), chunk, read):
                    record = mx.recordio.pack(mx.recordio.IRHeader(0, labels[k], i, 0), png)
                    writer.write_idx(i, record)
                    digest.update(record)
                    x = pixels.reshape(-1, channels).astype(np.float64)
                    sums = [sums[0] + len(x), sums[1] + x.sum(0), sums[2] + (x * x).sum(0)]
    finally:
        writer.close()
    return sums, digest.hexdigest()


def _stored(path: str, size: int, channels: int):
    """``(PNG bytes, pixels)`` of one file as a pack stores it, or the error's words."""
    from PIL import Image

    try:
        pixels = read_square(path, size, channels)
    except ValueError as err:
        return str(err)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=1)  # lossless: the same pixels
    return out.getvalue(), pixels


def read_pack_info(rec: str) -> PackInfo:
    """The :class:`PackInfo` of the ``.json`` :func:`pack` wrote beside ``rec``, after
    checking the ``.idx`` is there and agrees.

    Raises
    ------
    ValueError
        ``rec`` is not a ``.rec`` file, or its ``.idx`` or ``.json`` is missing, unreadable,
        edited or of another pack; one line naming the file (and the key).
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
            values = json.load(f)
        with open(idx, encoding="utf-8") as f:
            count = sum(1 for _ in f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{meta} or {idx} cannot be read ({err}); pack the folder again.") \
            from None
    info = PackInfo.from_dict(values, meta)
    if count != info.count:
        raise ValueError(f"{idx} lists {count} records but {meta} says {info.count}: "
                         f"the files are not of one pack; pack the folder again.")
    return info


def _offsets(rec: str) -> List[int]:
    """The byte offset of each record, in record order, from the ``.idx``."""
    with open(rec[:-len(".rec")] + ".idx", encoding="utf-8") as f:
        pairs = sorted((int(key), int(offset)) for key, offset in
                       (line.split("\t") for line in f if line.strip()))
    return [offset for _, offset in pairs]


def pack_labels(rec: str) -> np.ndarray:
    """The label of every record, in order, read from the records' headers alone (each
    record: 8 bytes of RecordIO framing, then its ``IRHeader``)."""
    size = struct.calcsize(mx.recordio._IR_FORMAT)
    labels = []
    with open(rec, "rb") as f:
        for offset in _offsets(rec):
            f.seek(offset + 8)
            labels.append(struct.unpack(mx.recordio._IR_FORMAT, f.read(size))[1])
    return np.asarray(labels, dtype=np.int32)


def read_records(rec: str, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of the records at ``indices``, decoded into memory as an image
    folder's are kept (uint8, (N, S, S) gray or (N, S, S, 3) colour): what a sample of a
    ``.rec`` trains and is evaluated on."""
    from PIL import Image

    reader = mx.recordio.MXIndexedRecordIO(rec[:-len(".rec")] + ".idx", rec, "r")
    images, labels = [], []
    try:
        for i in indices:
            header, png = mx.recordio.unpack(reader.read_idx(int(i)))
            images.append(np.asarray(Image.open(io.BytesIO(png))))
            labels.append(int(header.label))
    finally:
        reader.close()
    return np.stack(images), np.asarray(labels, dtype=np.int32)


class RecordBatches:
    """``(X, y)`` batches of a ``.rec`` through ``ImageRecordIter`` (see the module's
    docstring), with a length, and ``batches(epoch, start)`` as
    :class:`resnet_gluon.data.BatchIter` has.

    Parameters
    ----------
    rec : str
        A ``.rec`` written by :func:`pack`.
    batch_size : int
    resize, channels : int
        The pack's size and channels (a check: its images are stored so, see :func:`pack`).
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
        info = read_pack_info(rec)
        if (resize, channels) != (info.size, info.channels):
            raise ValueError(f"{rec} holds {info}; it cannot give {channels}-channel "
                             f"{resize}x{resize} images. Pack the folder again with --resize "
                             f"{resize}, or train at --resize {info.size}.")
        count = info.count
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
            rand_crop=self.augment, rand_mirror=self.augment, pad=2 if self.augment else 0,
            fill_value=0, shuffle=self.shuffle,
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
