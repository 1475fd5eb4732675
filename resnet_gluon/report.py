"""Pictures of what a trained net sees, for the command line: ``predict --explain`` and
``evaluate --report``.

:func:`explain_files` writes one PNG per image: the image as the net saw it (after its run's
preprocessing), the Grad-CAM of the top class over it, and the top classes in the title.
:func:`write_report` writes one self-contained HTML page of an evaluation: accuracy, per-class
accuracy with counts, the confusion matrix (past
:data:`~resnet_gluon.evaluate.MATRIX_CLASSES` classes, the most confused pairs), the most
confident mistakes with their Grad-CAM, and for a run its learning curves, its recipe and its
data; the pictures are embedded as PNG, so the page needs no network and no script.

Grad-CAM reads the float32 net (:func:`resnet_gluon.visualize.grad_cam`): for a bfloat16 or
INT8 net, explain with the float32 weights it was made from.
"""
import base64
import dataclasses
import html
import io
import os
import platform
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
from mxnet import gluon, nd

from .checkpoint import atomic_write, atomic_write_text
from .cpu import ISA_FLAGS, cpu_flags, cpu_model
from .evaluate import MATRIX_CLASSES, EvalResult
from .predict import Prediction, read_for
from .run import (CONFIG_FILE, CURVES_FILE, IMAGES_FILE, find_run_config, read_config,
                  read_images, read_json)
from .trained import INFO_SUFFIX, SYMBOL_SUFFIX, ModelInfo, pretrained_info
from .visualize import grad_cam, plot_confusion, plot_grad_cam, plot_per_class

__all__ = ["net_view", "check_explain_directory", "explanation_paths", "explain_files",
           "Mistake", "confident_mistakes", "check_report_path", "write_report",
           "DEFAULT_MISTAKES"]

#: How many of the most confident mistakes a report shows by default.
DEFAULT_MISTAKES = 24
#: The suffix of ``predict --explain``'s PNGs: ``IMAGE-explained.png``.
_SUFFIX = "-explained.png"


def net_view(x: np.ndarray) -> np.ndarray:
    """One input of the net, (C, H, W) as it takes it, as a picture: (H, W) gray or
    (H, W, 3) colour in [0, 1], stretched to its own range (the normalisation undone up to
    contrast, so every input shows whatever its statistics)."""
    x = np.asarray(x, dtype=np.float32)
    low, high = float(x.min()), float(x.max())
    view = (x - low) / (high - low) if high > low else np.zeros_like(x)
    return view[0] if view.shape[0] == 1 else view.transpose(1, 2, 0)


def _figure(view: np.ndarray, cam: np.ndarray, title: str, left: str, right: str,
            inches: float = 2.4, dpi: int = 100):
    """The image beside its Grad-CAM overlay, ``title`` above both."""
    fig = _new_figure((2 * inches, inches + (0.55 if title else 0.25)), dpi)
    a, b = fig.subplots(1, 2)
    a.imshow(view, cmap="gray", vmin=0, vmax=1)
    a.set_xticks([])
    a.set_yticks([])
    a.set_title(left, fontsize=7)
    plot_grad_cam(view, cam, ax=b, title=right)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def _new_figure(size: Tuple[float, float], dpi: int):
    """A matplotlib Figure of its own, outside pyplot: no backend is chosen or changed (a
    notebook's stays as it was) and nothing is left open."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=dpi)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


# --------------------------------------------------------------------------- predict --explain

def check_explain_directory(directory: str) -> None:
    """Make ``directory`` for the PNGs, or say in one line why it cannot be."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"--explain {directory} is a file; give a directory for the PNGs "
                         f"(it is created if missing).")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--explain {directory}: cannot create it ({err.strerror}); give a "
                         f"directory you can write to.") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"--explain {directory} is not writable; give a directory you can "
                         f"write to.")


def explanation_paths(files: Sequence[str], directory: str) -> List[str]:
    """The PNG of each image in ``directory``: ``NAME-explained.png`` after the image's
    name without its extension, ``NAME-explained-2.png`` and so on where two images share a
    name; never the path of one of the images."""
    taken = {os.path.normcase(os.path.abspath(f)) for f in files}
    paths = []
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0] or "image"
        for n in range(1, len(files) + 2):
            name = stem + (_SUFFIX if n == 1 else f"-explained-{n}.png")
            candidate = os.path.join(directory, name)
            key = os.path.normcase(os.path.abspath(candidate))
            if key not in taken:
                taken.add(key)
                paths.append(candidate)
                break
    return paths


def explain_files(net: gluon.Block, info: ModelInfo, predictions: Sequence[Prediction],
                  directory: str, invert: bool = False, note: str = "",
                  batch_size: int = 32) -> List[str]:
    """Write one PNG per prediction in ``directory``: the image as the net saw it, the
    Grad-CAM of its top class over it, and its top classes in the title.

    Parameters
    ----------
    net : mxnet.gluon.Block
        The float32 net (layered, or a float32 or bfloat16 export) Grad-CAM reads.
    info : ModelInfo
        How a file becomes the net's input.
    predictions : sequence of Prediction
        From :func:`resnet_gluon.predict.predict_files` (of ``net``, or of a bfloat16 net
        made from it: the classes shown are the prediction's).
    directory : str
        Created if missing; a file there of the same name is replaced.
    invert : bool
        As given to ``predict_files``.
    note : str
        A line under the title (what the explanation was computed on).

    Returns
    -------
    list of str
        The PNG of each prediction, in order.
    """
    check_explain_directory(directory)
    paths = explanation_paths([p.file for p in predictions], directory)
    for start in range(0, len(predictions), batch_size):
        chunk = predictions[start:start + batch_size]
        X = info.prepare(np.stack([read_for(info, p.file, invert=invert) for p in chunk]))
        top = [info.classes.index(p.top[0][0]) for p in chunk]
        cams = grad_cam(net, X, class_index=top)
        for p, x, cam, path in zip(chunk, X.asnumpy(), cams, paths[start:start + batch_size]):
            classes = ", ".join(f"{c} {q:.3f}" for c, q in p.top)
            side = x.shape[-1]
            fig = _figure(net_view(x), cam, f"{os.path.basename(p.file)}: {classes}"
                          + (f"\n{note}" if note else ""),
                          f"as the net sees it ({side}x{side})", f"Grad-CAM: {p.top[0][0]}")
            png = _png(fig)
            atomic_write(path, lambda tmp: _write_bytes(tmp, png))
    return paths


# --------------------------------------------------------------------------- evaluate --report

@dataclasses.dataclass
class Mistake:
    """One test image the net got wrong: its index, true and predicted class, the
    probability of the prediction, the input as a picture and the Grad-CAM of the
    predicted class."""

    index: int
    true: int
    predicted: int
    confidence: float
    view: np.ndarray
    cam: np.ndarray


def confident_mistakes(net: gluon.Block, batches: Iterable, result: EvalResult,
                       count: int = DEFAULT_MISTAKES) -> List[Mistake]:
    """The ``count`` mistakes of ``result`` the net was surest of, with the Grad-CAM of
    what it predicted; ``batches`` are the ``(X, y)`` batches ``result`` was computed on,
    in the same order, and ``net`` the float32 net that computed it."""
    wanted = result.confident_mistakes(count)
    if not len(wanted):
        return []
    inputs, start = {}, 0
    for X, _ in batches:
        hit = [i for i in wanted if start <= i < start + X.shape[0]]
        for i in hit:
            inputs[int(i)] = X[int(i) - start].asnumpy()
        start += X.shape[0]
        if len(inputs) == len(wanted):
            break
    X = nd.array(np.stack([inputs[int(i)] for i in wanted]))
    cams = grad_cam(net, X, class_index=result.predictions[wanted])
    return [Mistake(int(i), int(result.labels[i]), int(result.predictions[i]),
                    float(result.confidence[i]), net_view(x), cam)
            for i, x, cam in zip(wanted, X.asnumpy(), cams)]


def check_report_path(path: str, force: bool = False) -> None:
    """Refuse, in one line, a report path that exists (without ``force``), names a
    directory, or lies in a directory that is missing."""
    if os.path.isdir(path):
        raise ValueError(f"--report {path} is a directory; give a file name such as "
                         f"{os.path.join(path, 'report.html')}.")
    if os.path.exists(path) and not force:
        raise ValueError(f"--report {path} exists; give another name, or --force to "
                         f"replace it.")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"--report {path}: its directory {directory} does not exist; "
                         f"create it first.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"--report {path}: {directory} is not writable.")


def _img(data: bytes, alt: str, width: Optional[int] = None) -> str:
    size = f' width="{width}"' if width else ""
    return (f'<img alt="{html.escape(alt)}"{size} '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')


def _table(header: Sequence[str], rows: Iterable[Sequence], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><tr>{head}</tr>{body}</table>'


def _figure_png(draw, size: Tuple[float, float]) -> bytes:
    fig = _new_figure(size, 90)
    draw(fig.subplots())
    fig.tight_layout()
    return _png(fig)


def _per_class(result: EvalResult, classes: Sequence[str]) -> str:
    counts = result.confusion.sum(axis=1)
    rows = [(name, f"{acc:.3f}", f"{int(n):,}")
            for name, acc, n in zip(classes, result.per_class, counts)]
    if len(classes) <= MATRIX_CLASSES:
        bars = _img(_figure_png(lambda ax: plot_per_class(result.confusion, classes, ax),
                                (7, 3.2)), "per-class accuracy")
        return f'<div class="row">{bars}{_table(("class", "accuracy", "images"), rows)}</div>'
    worst = sorted(range(len(rows)), key=lambda i: (np.nan_to_num(result.per_class[i], nan=2),
                                                    i))[:MATRIX_CLASSES]
    return (f"<p>The {len(worst)} classes with the lowest accuracy of {len(classes):,}:</p>"
            + _table(("class", "accuracy", "images"), [rows[i] for i in worst])
            + f"<details><summary>all {len(classes):,} classes</summary>"
            + _table(("class", "accuracy", "images"), rows) + "</details>")


def _confusion(result: EvalResult, classes: Sequence[str], pairs: int = 20) -> str:
    if len(classes) <= MATRIX_CLASSES:
        return _img(_figure_png(lambda ax: plot_confusion(result.confusion, classes, ax),
                                (6, 5.4)), "confusion matrix") + \
            "<p>Rows: the true class; columns: the predicted one; shade: the share of the " \
            "row, number: images.</p>"
    off = result.confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:pairs]
    shown = [(int(k) // len(classes), int(k) % len(classes)) for k in order if off.flat[k]]
    return (f"<p>Past {MATRIX_CLASSES} classes a matrix is unreadable: the {len(shown)} most "
            f"confused pairs of the {len(classes):,} classes.</p>"
            + _table(("true class", "predicted as", "images"),
                     [(classes[i], classes[j], f"{int(off[i, j]):,}") for i, j in shown]))


def _mistakes(mistakes: Sequence[Mistake], classes: Sequence[str]) -> str:
    if not mistakes:
        return "<p>No mistakes.</p>"
    cells = []
    for m in mistakes:
        fig = _figure(m.view, m.cam, "", f"true: {classes[m.true]}",
                      f"Grad-CAM: {classes[m.predicted]}", inches=1.5, dpi=80)
        cells.append(f'<figure>{_img(_png(fig), f"test image {m.index}")}<figcaption>'
                     f"image {m.index}: true {html.escape(classes[m.true])}, predicted "
                     f"{html.escape(classes[m.predicted])} ({m.confidence:.3f})"
                     f"</figcaption></figure>")
    return '<div class="grid">' + "".join(cells) + "</div>"


def _run_section(params: Optional[str]) -> str:
    """The run the weights come from: its curves, recipe and data (config.json,
    images.json), or what the package says of the shipped weights, or an export's info."""
    if params is None:
        source = pretrained_info()["source"]
        return ("<p>The weights shipped in the package.</p>"
                + _table(("setting", "value"), source.items()))
    if os.path.isfile(params + SYMBOL_SUFFIX):
        info = params + INFO_SUFFIX
        return (f"<p>An exported model, {html.escape(params)}: the run it came from is not "
                f"part of it.</p>" + (_table(("setting", "value"), read_json(info).items())
                                      if os.path.isfile(info) else ""))
    config = find_run_config(params)
    if config is None:
        return (f"<p>{html.escape(params)} has no {CONFIG_FILE} beside it (nor two levels "
                f"up): its recipe and data are not known.</p>")
    run_dir = os.path.dirname(config)
    settings = read_config(run_dir)
    parts = [f"<p>Run {html.escape(run_dir)}.</p>"]
    curves = os.path.join(run_dir, CURVES_FILE)
    if os.path.isfile(curves):
        with open(curves, "rb") as f:
            parts.append("<h3>Learning curves</h3>" + _img(f.read(), "learning curves",
                                                            width=720))
    else:
        parts.append(f"<p>No {CURVES_FILE} in the run.</p>")
    data = {k: settings[k] for k in _DATA_SETTINGS if settings.get(k) is not None}
    if not (data.get("data") or data.get("data_dir")):
        data["data"] = "Fashion-MNIST"
    for part, files in read_images(run_dir).parts.items():
        data[f"{part} images ({IMAGES_FILE})"] = f"{len(files):,}"
    parts.append("<h3>Data</h3>" + _table(("setting", "value"), data.items()))
    parts.append("<h3>Recipe</h3>" + _table(
        ("setting", "value"), [(k, v) for k, v in settings.items()
                               if k not in _DATA_SETTINGS and k != "classes"]))
    return "".join(parts)


#: The settings of config.json that say which data a run read.
_DATA_SETTINGS = ("data", "test_data", "data_dir", "channels", "skip_bad_images", "preprocess",
                  "mean", "std", "limit_train", "limit_test", "val_split")


_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .2em .6em; text-align: left; }
.grid, .row { display: flex; flex-wrap: wrap; gap: .5em 1.5em; align-items: flex-start; }
figure { margin: 0; width: 240px; } figcaption { font-size: .75em; }
.accuracy { font-size: 2em; font-weight: bold; }
code { background: #f4f4f4; padding: .1em .3em; }
"""


def write_report(path: str, result: EvalResult, info: ModelInfo,
                 mistakes: Sequence[Mistake], what: str, params: Optional[str] = None,
                 command: Optional[str] = None, notes: Sequence[str] = (),
                 force: bool = False) -> str:
    """Write the HTML report of an evaluation to ``path`` (whole or not at all).

    Parameters
    ----------
    path : str
        The page; refused if it exists, unless ``force``.
    result : EvalResult
        The evaluation (float32).
    info : ModelInfo
        The net evaluated: its architecture, input and class names.
    mistakes : sequence of Mistake
        From :func:`confident_mistakes`.
    what : str
        The images evaluated, in words ("images of DIR/test").
    params : str, optional
        The weights (a run's ``model.params``, a checkpoint, an export's prefix); None for
        the shipped weights.
    command : str, optional
        The command that made the page, shown in it.
    notes : sequence of str
        Lines shown under the accuracy (such as what the page was computed on).

    Returns
    -------
    str
        ``path``.
    """
    check_report_path(path, force)
    classes = [str(c) for c in info.classes]
    flags = cpu_flags()
    machine = (f"{cpu_model() or platform.processor() or 'unknown CPU'}, {os.cpu_count()} "
               f"logical cores; ISA: {' '.join(f for f in ISA_FLAGS if f in flags) or 'none'}"
               f"; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    weights = params if params is not None else "the weights shipped in the package"
    spec = info.model
    sections = [
        ("accuracy", "Accuracy",
         f'<p class="accuracy">{result.accuracy:.4f}</p>'
         f"<p>{result.count:,} {html.escape(what)}; ResNet-{spec.depth}, "
         f"{len(classes):,} classes, input {html.escape(info.describe_input())}; weights: "
         f"{html.escape(weights)}.</p>"
         + "".join(f"<p>{html.escape(n)}</p>" for n in notes)),
        ("per-class", "Per-class accuracy", _per_class(result, classes)),
        ("confusion", "Confusion", _confusion(result, classes)),
        ("mistakes", f"The {len(mistakes)} most confident mistakes",
         "<p>Each test image as the net saw it, and the Grad-CAM of the class it predicted: "
         "where the evidence for the wrong class lies.</p>" + _mistakes(mistakes, classes)),
        ("run", "The run", _run_section(params)),
        ("made-by", "Made by",
         _table(("", ""), [("command", command or "(a script)"), ("CPU", machine)])),
    ]
    body = "".join(f'<section id="{sid}"><h2>{html.escape(title)}</h2>{content}</section>'
                   for sid, title, content in sections)
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Evaluation of {html.escape(weights)}</title><style>{_STYLE}</style>"
            f"</head><body><h1>Evaluation of {html.escape(weights)}</h1>{body}</body></html>\n")
    atomic_write_text(path, page)
    return path
