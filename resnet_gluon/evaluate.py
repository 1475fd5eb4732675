"""Evaluation: accuracy, per-class accuracy, the confusion matrix, and the report of them.

``evaluate`` runs a net in predict mode over batches; ``compare`` evaluates a
float32 net beside a lower-precision copy of it (bfloat16, INT8) and measures
how often they agree; ``format_report`` turns an :class:`EvalResult` into the
tables ``python -m resnet_gluon evaluate`` prints.
"""
import dataclasses
from typing import Iterable, List, Sequence, Union

import mxnet as mx
import numpy as np
from mxnet import gluon, nd

from ._checks import NONNEGATIVE_INT, printable
from .config import parse_ctx

__all__ = ["EvalResult", "Comparison", "evaluate", "compare", "agreement", "format_report",
           "report_dict", "MATRIX_CLASSES", "tta_views", "predict_tta", "class_labels"]


@dataclasses.dataclass
class EvalResult:
    """Accuracy on a data set: overall, per class, and the confusion matrix.

    ``confusion[i, j]`` counts examples of true class ``i`` predicted as ``j``;
    ``predictions`` holds the predicted class of every example, in order, ``labels`` its
    true class and ``confidence`` the probability the net gave its predicted class.
    """

    accuracy: float
    per_class: List[float]
    confusion: np.ndarray
    predictions: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    confidence: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))

    def confident_mistakes(self, count: int) -> np.ndarray:
        """Indexes of the ``count`` mistakes the net was surest of, surest first."""
        wrong = np.flatnonzero(self.predictions != self.labels)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")][:count]

    @property
    def count(self) -> int:
        """Examples evaluated."""
        return int(self.confusion.sum())


def tta_views(X: nd.NDArray, flip: bool = False, shift: int = 0) -> List[nd.NDArray]:
    """The views of a batch that test-time augmentation averages over.

    The batch itself, its mirror image (``flip``), and each of those moved by
    ``shift`` pixels left, right, up and down (``shift > 0``; zeros fill in),
    ``shift`` counted in the input's own pixels.
    """
    if shift >= min(X.shape[2], X.shape[3]):  # a view moved that far shows only padding
        raise ValueError(f"shift must be smaller than the {X.shape[2]}x{X.shape[3]} images "
                         f"it moves, got {shift} pixels; 1 or 2 is usual.")
    views = [X, X.flip(axis=3)] if flip else [X]
    if shift:
        k = shift
        padded = [nd.pad(v, mode="constant", pad_width=(0, 0, 0, 0, k, k, k, k)) for v in views]
        h, w = X.shape[2], X.shape[3]
        for p in padded:  # the window moved by k in each direction
            for dy, dx in ((0, k), (2 * k, k), (k, 0), (k, 2 * k)):
                views.append(p[:, :, dy:dy + h, dx:dx + w])
    return views


def predict_tta(net: gluon.Block, X: nd.NDArray, flip: bool = False, shift: int = 0
                ) -> nd.NDArray:
    """Class probabilities of ``X``: the mean softmax over :func:`tta_views`."""
    views = tta_views(X, flip, shift)
    return nd.add_n(*[nd.softmax(net(v)) for v in views]) / len(views)


def evaluate(net: gluon.Block, data: Iterable, ctx: Union[str, Sequence[mx.Context], None] = None,
             num_classes: int = 10, flip: bool = False, shift: int = 0) -> EvalResult:
    """Predict-mode accuracy of ``net`` on ``data`` (batches of ``(X, y)``).

    Parameters
    ----------
    net : mxnet.gluon.Block
    data : iterable of (NDArray, NDArray)
    ctx : str or list of Context, optional
        Devices to split each batch over (default ``cpu``).
    num_classes : int, default 10
    flip : bool, default False
        Test-time augmentation: average the softmax of each image and of its
        mirror image (twice the cost; pairs with training on random flips).
    shift : int, default 0
        Test-time augmentation: also average over each view moved by this many
        input pixels in four directions (five times the cost; pairs with
        training on random shifts).  See :func:`predict_tta`.

    The net computes in whatever type it was prepared in (a bfloat16 net comes from
    :func:`resnet_gluon.trained.load_model` or :func:`resnet_gluon.precision.mixed_precision`).
    """
    ctxs = parse_ctx(ctx)
    NONNEGATIVE_INT.check("shift", shift)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    predictions, labels, confidence = [], [], []
    for X, y in data:
        xs = gluon.utils.split_and_load(X, ctxs, even_split=False)
        ys = gluon.utils.split_and_load(y, ctxs, even_split=False)
        for xp, yp in zip(xs, ys):
            scores = predict_tta(net, xp, flip, shift) if flip or shift else net(xp)
            pred = scores.argmax(axis=1).asnumpy().astype(np.int64)
            probs = scores if flip or shift else nd.softmax(scores.astype("float32"))
            true = class_labels(yp, num_classes)
            predictions.append(pred)
            labels.append(true)
            confidence.append(probs.max(axis=1).asnumpy().astype(np.float32))
            np.add.at(confusion, (true, pred), 1)
    total = confusion.sum()
    if total == 0:
        raise ValueError("evaluate got no examples.")
    per_class = [float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else
                 float("nan") for i in range(num_classes)]
    return EvalResult(float(np.trace(confusion) / total), per_class, confusion,
                      np.concatenate(predictions), np.concatenate(labels),
                      np.concatenate(confidence))


def class_labels(y: nd.NDArray, num_classes: int, who: str = "evaluate") -> np.ndarray:
    """The batch's labels as class indices, refusing any a class count cannot hold
    (a label outside ``[0, num_classes)``, or not a whole number)."""
    raw = y.asnumpy()
    labels = raw.astype(np.int64)
    bad = raw[(labels != raw) | (labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(f"{who} got the label {bad[0]:g}, but the net has {num_classes} "
                         f"classes, labelled 0 to {num_classes - 1}. Check the data, or pass "
                         f"the num_classes the net was built with.")
    return labels


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of examples with the same top-1 class in two sets of predictions.

    Each of ``a``, ``b`` is either predicted classes (N,) or scores (N, classes).
    """
    a, b = (np.asarray(v) for v in (a, b))
    a, b = (v.argmax(axis=1) if v.ndim == 2 else v for v in (a, b))
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"cannot compare predictions of shapes {a.shape} and {b.shape}.")
    return float(np.mean(a == b))


@dataclasses.dataclass
class Comparison:
    """A float32 net and a lower-precision copy of it, evaluated on the same data."""

    reference: EvalResult
    lower: EvalResult

    @property
    def agreement(self) -> float:
        """Share of examples the two give the same top-1 class."""
        return agreement(self.lower.predictions, self.reference.predictions)


def compare(net: gluon.Block, lower: gluon.Block, data: Iterable,
            ctx: Union[str, Sequence[mx.Context], None] = None, num_classes: int = 10,
            flip: bool = False, shift: int = 0) -> Comparison:
    """Evaluate ``net`` (float32) and ``lower`` (its bfloat16 or INT8 copy) on ``data``.

    Each with the same test-time augmentation (``flip``, ``shift``, as in
    :func:`evaluate`); the result has both accuracies and their top-1 agreement.

    Examples
    --------
    >>> from resnet_gluon.precision import mixed_precision
    >>> cmp = compare(net, mixed_precision(net, "bfloat16"), test_iter)  # doctest: +SKIP
    >>> cmp.reference.accuracy, cmp.lower.accuracy, cmp.agreement      # doctest: +SKIP
    """
    return Comparison(evaluate(net, data, ctx, num_classes, flip=flip, shift=shift),
                      evaluate(lower, data, ctx, num_classes, flip=flip, shift=shift))


#: The most classes whose confusion matrix is printed whole; past it, the most confused pairs
#: (a 1,000-class matrix is 8 MB of text; ``evaluate --json`` holds it whole).
MATRIX_CLASSES = 20


def format_report(result: EvalResult, class_names: Sequence[str], pairs: int = 20) -> str:
    """Per-class accuracy (with each class's count) and the confusion matrix as text, one
    table after the other; past :data:`MATRIX_CLASSES` classes, the ``pairs`` most confused
    pairs instead of the matrix."""
    names = [printable(n) for n in class_names]
    width = min(max(len(n) for n in names), 40)
    counts = result.confusion.sum(axis=1)
    lines = ["per-class accuracy:"]
    lines += [f"  {name:<{width}}  {acc:.3f}  ({int(n):,})"
              for name, acc, n in zip(names, result.per_class, counts)]
    if len(names) <= MATRIX_CLASSES:
        lines.append("confusion matrix (rows: true class, columns: predicted):")
        lines.append(" " * (width + 2) + " ".join(f"{n[:7]:>7}" for n in names))
        lines += [f"  {name:<{width}}" + " ".join(f"{v:>7d}" for v in row)
                  for name, row in zip(names, result.confusion)]
        return "\n".join(lines)
    off = result.confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:pairs]
    shown = [(int(k) // len(names), int(k) % len(names)) for k in order if off.flat[k] > 0]
    lines.append(f"the {len(shown)} most confused pairs of the {len(names):,} classes "
                 f"(true -> predicted: images; the whole matrix: evaluate --json):")
    lines += [f"  {names[i]} -> {names[j]}: {int(off[i, j]):,}" for i, j in shown]
    return "\n".join(lines)


def report_dict(result: EvalResult, class_names: Sequence[str]) -> dict:
    """The whole report as JSON-able values: accuracy, count, and per class its name, count,
    accuracy and row of the confusion matrix."""
    return {"accuracy": result.accuracy, "count": result.count,
            "classes": [{"name": n, "count": int(row.sum()), "accuracy": acc,
                         "predicted": row.tolist()}
                        for n, acc, row in zip(class_names, result.per_class, result.confusion)]}
