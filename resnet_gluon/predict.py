"""Predict on real image files: any PNG/JPEG becomes what training saw.

Every file goes through the net's input record (:class:`resnet_gluon.inputs.InputSpec`,
``info.inputs``), which its run wrote: a Fashion-MNIST run's files become 28x28 gray
images (shrunk or enlarged to a longer side of 28, padded to a square with their own border
colour; a 28x28 gray file, such as one written from the test set, is used as is), then the
very resize of training; an image folder's or a ``.rec``'s are scaled and centre-cropped to
the run's side, gray or colour as the run was, and normalised with its training images'
mean and std.
"""
import dataclasses
import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from mxnet import gluon, nd

from ._checks import printable
# The file guards and the Fashion-MNIST reader are resnet_gluon.images'; their names stay
# importable from here.
from .images import IMAGE_EXTENSIONS, MAX_FILE_BYTES, MAX_PIXELS, read_image
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


@dataclasses.dataclass
class Prediction:
    """The top classes of one image: ``[(class name, probability), ...]``, best first."""

    file: str
    top: List[Tuple[str, float]]

    def to_dict(self) -> Dict[str, Any]:
        """``{"file": ..., "top": [{"class": ..., "probability": ...}, ...]}`` (JSON lines)."""
        return {"file": self.file, "top": [{"class": c, "probability": round(p, 6)}
                                           for c, p in self.top]}

    def __str__(self) -> str:
        """``FILE: CLASS P, CLASS P, ...``: predict's line."""
        return printable(f"{self.file}: " + ", ".join(f"{c} {p:.3f}" for c, p in self.top))


def read_for(info: ModelInfo, path: str, invert: bool = False) -> np.ndarray:
    """One image file as the uint8 image the net of ``info`` was trained on (its input
    record's :meth:`~resnet_gluon.inputs.InputSpec.read`)."""
    return info.inputs.read(path, invert=invert)


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
