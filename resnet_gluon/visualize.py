"""What a trained ResNet sees: Grad-CAM, the feature maps of each layer, and plots of results.

The computing helpers (:func:`grad_cam`, :func:`feature_maps`) return NumPy
arrays and need nothing but MXNet; the ``plot_*`` helpers draw with
matplotlib on a given axes (or a new figure) and return it, so a notebook
shows them and a script saves them.
"""
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mxnet import autograd, gluon, nd

__all__ = ["feature_maps", "grad_cam", "plot_predictions", "plot_confusion",
           "plot_per_class", "plot_grad_cam", "plot_feature_maps"]


def _as_batch(net: gluon.Block, x, graph_too: bool = False) -> nd.NDArray:
    """A (N, C, H, W) float32 NDArray on the net's device (a NumPy array is accepted),
    which the net's layers can take one by one (or, with ``graph_too``, a float32
    exported graph)."""
    layered = isinstance(net, (gluon.nn.Sequential, gluon.nn.HybridSequential))
    if not (layered or graph_too and isinstance(net, gluon.SymbolBlock)):
        raise TypeError(f"expected the sequential net, layer by layer (build_resnet18(), "
                        f"load_model() in float32), got a {type(net).__name__}; a bfloat16 "
                        f"or INT8 net is one graph, without layers to look into.")
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    if not isinstance(x, nd.NDArray):
        x = nd.array(np.asarray(x, dtype=np.float32))
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {x.shape}; "
                         f"add the axes with x[None, None] for one gray (H, W) image.")
    if x.shape[0] == 0:
        raise ValueError(f"expected a batch of at least one image, got shape {x.shape}.")
    if hasattr(net, "check_batch"):  # a ResNet: the channels it holds, a float type
        net.check_batch(x)
    return x.as_in_context(ctx)


def feature_maps(net: gluon.Block, x) -> List[Tuple[str, np.ndarray]]:
    """The output of each top-level layer of ``net`` for the batch ``x``.

    Parameters
    ----------
    net : mxnet.gluon.Block
        A sequential net (``build_resnet18()``, a trained net), initialised.
    x : NDArray or numpy.ndarray
        (N, C, H, W) input batch, as the net takes it.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``(layer name, output)`` in order: the shapes are those notebook cell 8
        prints, the values those of ``x``.
    """
    X = _as_batch(net, x)
    out = []
    for layer in net:
        X = layer(X)
        out.append((layer.name, X.asnumpy()))
    return out


def grad_cam(net: gluon.Block, x, class_index: Optional[Sequence[int]] = None,
             split: int = -2) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017) of the last stage, at the input's size.

    The gradient of a class score with respect to the last stage's output,
    averaged over positions, weighs that output's channels; their sum, kept
    where positive, says where the evidence for the class lies.  Computed with
    ``autograd`` in predict mode (BatchNorm uses its running statistics).

    Parameters
    ----------
    net : mxnet.gluon.Block
        A sequential net whose last ``-split`` layers are the head (the book's
        ResNet: global average pooling and the dense layer), or a float32 exported
        ResNet (``load_model(PREFIX)``: a ``SymbolBlock`` whose graph ends in global
        average pooling and a dense layer; a bfloat16 export is explained on its
        float32 weights, without its casts).
    x : NDArray or numpy.ndarray
        (N, C, H, W) input batch.
    class_index : sequence of int, optional
        The class explained for each image; by default the predicted one.
    split : int, default -2
        Where the head starts: ``net[:split]`` ends with the last stage.

    Returns
    -------
    numpy.ndarray
        float32 (N, H, W) in [0, 1] (each map divided by its maximum; all
        zero where no position speaks for the class).
    """
    X = _as_batch(net, x, graph_too=True)
    if isinstance(net, gluon.SymbolBlock):
        body, head = _graph_split(net)
    else:
        layers = list(net)
        body, head = layers[:split], layers[split:]
    features = X
    for layer in body:  # predict mode; only the head's gradient is needed
        features = layer(features)
    features.attach_grad()
    with autograd.record(train_mode=False):
        scores = features
        for layer in head:
            scores = layer(scores)
    if class_index is None:
        chosen = scores.argmax(axis=1)
    else:
        chosen = nd.array(_class_indexes(class_index, X.shape[0], scores.shape[1]),
                          ctx=X.context)
    one_hot = nd.one_hot(chosen, scores.shape[1])
    scores.backward(one_hot)
    weights = features.grad.mean(axis=(2, 3), keepdims=True)
    cam = nd.relu((weights * features).sum(axis=1, keepdims=True))
    cam = nd.contrib.BilinearResize2D(cam, height=X.shape[2], width=X.shape[3],
                                      align_corners=False)
    cam = cam.asnumpy()[:, 0]  # bilinear weights are convex: still >= 0
    peak = cam.reshape(len(cam), -1).max(axis=1)
    return (cam / np.where(peak > 0, peak, 1)[:, None, None]).astype(np.float32)


def _graph_split(net: gluon.SymbolBlock) -> Tuple[List[gluon.SymbolBlock],
                                                   List[gluon.SymbolBlock]]:
    """An exported ResNet's graph cut where its head begins: ``([body], [head])``, the body
    from the input to the last stage's output, the head (global average pooling, then the
    dense layer) rebuilt on that output with the same weights."""
    import json

    import mxnet as mx

    inputs, graph = net._cached_graph
    text = graph.tojson()  # without amp_cast nodes: a bfloat16 export's float32 weights
    graph = mx.sym.load_json(text)
    nodes = json.loads(text)["nodes"]
    ops = {node["op"] for node in nodes}
    if any(op.startswith(("_contrib_quantize", "_sg_mkldnn")) for op in ops):
        raise TypeError("expected the sequential net (load_model() in float32) or a float32 "
                        "or bfloat16 export, got an inference graph, quantized (INT8) or "
                        "fused: Grad-CAM needs the float32 weights. Explain with the run's "
                        "model.params, or an export written at float32.")

    def through(index: int) -> dict:  # a node, seen through casts and flattening
        node = nodes[index]
        return through(node["inputs"][0][0]) if node["op"] in ("amp_cast", "Flatten") \
            else node

    def source(node: dict) -> dict:
        return through(node["inputs"][0][0])

    dense = through(json.loads(text)["heads"][0][0])
    pool = source(dense) if dense["op"] == "FullyConnected" else dense
    attrs = pool.get("attrs", {})
    if not (dense["op"] == "FullyConnected" and pool["op"] == "Pooling"
            and attrs.get("global_pool") == "True" and attrs.get("pool_type") == "avg"):
        raise ValueError("this exported model does not end in global average pooling and a "
                         "dense layer, the head Grad-CAM reads; explain a ResNet of this "
                         "library (its model.params or its export).")
    last_stage = source(pool)["name"] + "_output"
    weight, bias = (through(i)["name"] for i, *_ in dense["inputs"][1:3])
    features = mx.sym.var("features")
    scores = mx.sym.FullyConnected(
        mx.sym.Pooling(features, kernel=(1, 1), global_pool=True, pool_type="avg"),
        weight=mx.sym.var(weight), bias=mx.sym.var(bias),
        num_hidden=int(dense["attrs"]["num_hidden"]))
    params = net.collect_params()
    with warnings.catch_warnings():  # "cannot decide type": the input's, until a call
        warnings.simplefilter("ignore")
        body = gluon.SymbolBlock(graph.get_internals()[last_stage], inputs, params=params)
        head = gluon.SymbolBlock(scores, features, params=params)
    return [body], [head]


def _class_indexes(class_index, count: int, num_classes: int) -> np.ndarray:
    """``class_index`` as one whole class number per image, each an output of the net."""
    wanted = np.asarray(class_index)
    if wanted.shape != (count,):
        raise ValueError(f"class_index must give one class per image ({count}), "
                         f"got {wanted.shape}.")
    if wanted.dtype == bool or not np.issubdtype(wanted.dtype, np.integer):
        raise TypeError(f"class_index must hold whole class numbers, got {wanted.tolist()} "
                        f"({wanted.dtype}).")
    bad = wanted[(wanted < 0) | (wanted >= num_classes)]
    if bad.size:
        raise ValueError(f"class_index {int(bad[0])} is not a class of the net: it has "
                         f"{num_classes} outputs, classes 0 to {num_classes - 1}.")
    return wanted


# --------------------------------------------------------------------------- plots

def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_predictions(images: np.ndarray, labels: Sequence[int], predictions: Sequence[int],
                     classes: Sequence[str], ncols: int = 8, figsize=None):
    """A grid of gray images titled ``true / predicted``, mistakes in red with a red frame.

    Returns the figure.
    """
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (1.6 * ncols, 1.9 * nrows),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(np.squeeze(images[i]), cmap="gray")
        wrong = int(labels[i]) != int(predictions[i])
        color = "red" if wrong else "black"
        ax.set_title(f"{classes[int(labels[i])]}\n{'x ' if wrong else ''}"
                     f"{classes[int(predictions[i])]}", fontsize=8, color=color)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(2 if wrong else 0.5)
    fig.tight_layout()
    return fig


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], ax=None,
                   normalize: bool = True):
    """The confusion matrix (rows: true class) as a heat map; returns the axes.

    With ``normalize`` each row is divided by its count (the share of the
    class predicted as each class); the counts are written in the cells.
    """
    confusion = np.asarray(confusion)
    ax = _axes(ax, (6, 5.5))
    rows = confusion.sum(axis=1, keepdims=True)
    shown = confusion / np.maximum(rows, 1) if normalize else confusion
    image = ax.imshow(shown, cmap="Blues")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = shown.max() if shown.size else 0
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax.text(j, i, int(count), ha="center", va="center", fontsize=6,
                    color="white" if shown[i, j] > top / 2 else "black")
    return ax


def plot_per_class(confusion: np.ndarray, classes: Sequence[str], ax=None):
    """Per-class accuracy (the confusion matrix's diagonal over its rows) as bars."""
    confusion = np.asarray(confusion)
    accuracy = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    ax = _axes(ax, (6, 3))
    bars = ax.bar(range(len(classes)), accuracy, color="tab:blue")
    ax.bar_label(bars, labels=[f"{a:.2f}" for a in accuracy], fontsize=7)
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    return ax


def plot_grad_cam(image: np.ndarray, cam: np.ndarray, ax=None, title: str = ""):
    """One gray image with its Grad-CAM laid over it; returns the axes."""
    ax = _axes(ax, (2, 2))
    ax.imshow(np.squeeze(image), cmap="gray")
    ax.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return ax


def plot_feature_maps(maps: Sequence[Tuple[str, np.ndarray]], channels: int = 8,
                      figsize=None):
    """The first ``channels`` maps of each layer for the batch's first image, a row a
    layer, titled with the layer's name and output shape; returns the figure.

    Layers whose output is no longer a picture (1x1 or flat) are left out.
    """
    import matplotlib.pyplot as plt

    maps = [(name, out) for name, out in maps if out.ndim == 4 and out.shape[-1] > 1]
    fig, axes = plt.subplots(len(maps), channels, squeeze=False,
                             figsize=figsize or (1.3 * channels, 1.5 * len(maps)))
    for row, (name, out) in zip(axes, maps):
        for c, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < out.shape[1]:
                ax.imshow(out[0, c], cmap="viridis")
        row[0].set_ylabel(f"{name}\n{tuple(out.shape)}", fontsize=7, rotation=0, ha="right",
                          va="center")
    fig.tight_layout()
    return fig
