"""Predict on real image files: any PNG/JPEG becomes what training saw.

A Fashion-MNIST run (``info.preprocess == 'fashion-mnist'``) saw 28x28 gray images (a light
object on a dark background), resized to the run's input size and scaled to [0, 1].  A file
of any size or colour is read as gray, shrunk (area) or enlarged (bilinear) to a longer side
of 28, padded to a square with its own border colour, then goes through the very resize of
training (:func:`resnet_gluon.data.resize_batch`).  A 28x28 gray file, such as one written
from the Fashion-MNIST test set, is used as is.

A run on an image folder (``'crop'``) saw its images as :mod:`resnet_gluon.folders` keeps
them: the shorter side scaled to the input side, the centre cropped, gray or colour as the
run was, normalised with the training set's mean and std; a file here goes through exactly
that (:meth:`resnet_gluon.trained.ModelInfo.prepare`).
"""
import dataclasses
import os
from typing import List, Sequence, Tuple

import mxnet as mx
import numpy as np
from mxnet import gluon, nd

from .folders import read_square
# The file guards are resnet_gluon.images'; their names stay importable from here.
from .images import IMAGE_EXTENSIONS, MAX_FILE_BYTES, MAX_PIXELS, read_image_file
# load_model is also importable from here, its home before resnet_gluon.trained.
from .trained import ModelInfo, load_model

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "MAX_FILE_BYTES", "image_files", "read_image",
           "load_model", "read_for", "Prediction", "predict_images", "predict_files"]

_SIDE = 28  # Fashion-MNIST's native size


def image_files(paths: Sequence[str]) -> List[str]:
    """Files named in ``paths``, with each directory replaced by its images (sorted).

    A file given by name is kept whatever its extension, so that a bad file
    gets its own error instead of being skipped in silence.
    """
    files = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(sorted(os.path.join(path, name) for name in os.listdir(path)
                                if name.lower().endswith(IMAGE_EXTENSIONS)
                                and os.path.isfile(os.path.join(path, name))))
        else:
            files.append(path)
    return files


def read_image(path: str, invert: bool = False) -> np.ndarray:
    """One image file as a uint8 (28, 28) gray array, as Fashion-MNIST stores them.

    The image is shrunk (area) or enlarged (bilinear) so that its longer side
    is 28, then padded to a square with its border's colour, the object kept
    centred.  Shrinking first keeps the work small for any shape of image.

    Parameters
    ----------
    path : str
        A PNG, JPEG or BMP file of any size up to :data:`MAX_PIXELS`, gray, RGB or RGBA.
    invert : bool, default False
        Turn a dark object on a light background (a product photo) into the
        light-on-dark images of Fashion-MNIST.

    Raises
    ------
    ValueError
        The file cannot be read, is not an image, or is too large; the message names it.
    """
    raw, _ = read_image_file(path)  # bounded, whole, not too large
    try:
        img = mx.image.imdecode(raw, flag=0).asnumpy()[:, :, 0]  # gray
    except mx.base.MXNetError:
        raise ValueError(f"{path}: not an image this library can decode "
                         f"(expected PNG, JPEG or BMP)") from None
    if img.size == 0:
        raise ValueError(f"{path}: the image is empty")
    h, w = img.shape
    border = int(np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])))
    side = max(h, w)
    th, tw = max(1, round(h * _SIDE / side)), max(1, round(w * _SIDE / side))
    if (th, tw) != (h, w):
        interp = 3 if side > _SIDE else 1  # area to shrink, bilinear to enlarge
        img = mx.image.imresize(nd.array(img[:, :, None], dtype="uint8"), tw, th,
                                interp=interp).asnumpy()[:, :, 0]
    if (th, tw) != (_SIDE, _SIDE):  # pad to a square with the border's colour, centred
        square = np.full((_SIDE, _SIDE), border, dtype=np.uint8)
        top, left = (_SIDE - th) // 2, (_SIDE - tw) // 2
        square[top:top + th, left:left + tw] = img
        img = square
    return 255 - img if invert else img


@dataclasses.dataclass
class Prediction:
    """The top classes of one image: ``[(class name, probability), ...]``, best first."""

    file: str
    top: List[Tuple[str, float]]


def read_for(info: ModelInfo, path: str, invert: bool = False) -> np.ndarray:
    """One image file as the uint8 image the net of ``info`` was trained on: (28, 28) gray
    for a Fashion-MNIST run (:func:`read_image`), the centre square at the run's input side,
    gray or RGB, for an image folder's (:func:`resnet_gluon.folders.read_square`)."""
    if info.preprocess == "fashion-mnist":
        return read_image(path, invert=invert)
    image = read_square(path, info.resize, info.model.in_channels)
    return 255 - image if invert else image


def predict_images(net: gluon.Block, images: np.ndarray, info: ModelInfo,
                   batch_size: int = 64) -> np.ndarray:
    """Class probabilities, (N, num_classes), for uint8 images as :func:`read_for` gives
    them ((N, 28, 28) for a Fashion-MNIST run)."""
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    out = []
    for start in range(0, len(images), batch_size):
        X = info.prepare(images[start:start + batch_size]).as_in_context(ctx)
        out.append(nd.softmax(net(X)).asnumpy())
    return np.concatenate(out) if out else np.zeros((0, info.model.num_classes), np.float32)


def predict_files(net: gluon.Block, info: ModelInfo, files: Sequence[str], topk: int = 3,
                  invert: bool = False) -> Tuple[List[Prediction], List[Tuple[str, str]]]:
    """Top-``topk`` classes of each readable image file; the others as errors.

    Returns
    -------
    (list of Prediction, list of (file, message))
        Predictions in the order of ``files``, and one message per file that
        could not be read.  A bad file never stops the others.
    """
    if topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}.")
    good, images, errors = [], [], []
    for path in files:
        try:
            images.append(read_for(info, path, invert=invert))
            good.append(path)
        except ValueError as err:
            errors.append((path, str(err)))
    probs = predict_images(net, np.stack(images) if images else
                           np.zeros((0, _SIDE, _SIDE), np.uint8), info)
    k = min(topk, probs.shape[1])
    predictions = []
    for path, p in zip(good, probs):
        best = np.argsort(-p, kind="stable")[:k]
        predictions.append(Prediction(path, [(info.classes[i], float(p[i])) for i in best]))
    return predictions, errors
